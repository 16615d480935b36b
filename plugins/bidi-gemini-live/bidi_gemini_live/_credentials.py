"""Where Gemini credentials come from, and the errors when there are none (no SDK import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bidi_core import MissingCredentialsError

__all__ = ["API_KEY_ENVS", "ENV_VARS", "missing_vertex", "require_credentials", "uses_vertex"]

#: The environment variables holding a Gemini API key, in the order google-genai reads them.
API_KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
#: Every environment variable that decides the credentials (``bidi models`` shows them).
ENV_VARS = (
    *API_KEY_ENVS,
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
)


def uses_vertex(vertexai: Any = None) -> bool:
    """Whether the client talks to Vertex AI: ``client_config['vertexai']``, else the env.

    google-genai reads ``GOOGLE_GENAI_USE_ENTERPRISE`` first, then
    ``GOOGLE_GENAI_USE_VERTEXAI`` (``true``/``1``).
    """
    if vertexai is not None:
        return bool(vertexai)
    for name in ("GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_USE_VERTEXAI"):
        value = os.environ.get(name)
        if value is not None:
            return value.strip().lower() in ("true", "1")
    return False


def require_credentials(client_config: Mapping[str, Any]) -> None:
    """Fail before any I/O when the Gemini API has no key (for Vertex AI the SDK decides).

    Raises:
        MissingCredentialsError: No ``api_key`` and neither key variable is set.
    """
    if uses_vertex(client_config.get("vertexai")):
        return
    if client_config.get("api_key") or any(os.environ.get(n) for n in API_KEY_ENVS):
        return
    msg = (
        "No Gemini API key: set GOOGLE_API_KEY (or GEMINI_API_KEY), or pass "
        "client_config={'api_key': ...}. For Vertex AI instead, set "
        "GOOGLE_GENAI_USE_VERTEXAI=true, GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION "
        "(credentials from gcloud auth application-default login)."
    )
    raise MissingCredentialsError(
        msg, env_vars=API_KEY_ENVS, config_keys=("client_config.api_key",)
    )


def missing_vertex(message: str) -> MissingCredentialsError:
    """The error for Vertex AI without a project, location or credentials."""
    msg = (
        f"{message} Set GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION (or client_config "
        "'project' and 'location') and run gcloud auth application-default login, or use "
        "the Gemini API with GOOGLE_API_KEY."
    )
    return MissingCredentialsError(
        msg,
        env_vars=(
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        config_keys=("client_config.project", "client_config.location"),
    )
