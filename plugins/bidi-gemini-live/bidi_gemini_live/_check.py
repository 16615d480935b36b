"""What ``bidi check gemini_live`` needs to know: the endpoint and the credentials' source."""

from __future__ import annotations

import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from bidi_core import BidiModel
from bidi_core.diagnostics import CheckInfo, Credentials, Endpoint

from ._credentials import API_KEY_ENVS, uses_vertex

__all__ = ["check_info"]

_GEMINI_API = "https://generativelanguage.googleapis.com/"
_KEY_FIX = "set GOOGLE_API_KEY (or GEMINI_API_KEY), or pass --set client_config.api_key=..."
_VERTEX_FIX = (
    "set GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION and run "
    "gcloud auth application-default login"
)


def _option(options: Any, name: str) -> Any:
    if isinstance(options, dict):
        return options.get(name)
    return getattr(options, name, None)


def check_info(model: BidiModel) -> CheckInfo:
    """Describe *model*'s endpoint and credentials for ``bidi check`` (no I/O).

    For Vertex AI only the project and location are looked at: whether Application
    Default Credentials work shows in the session step.
    """
    from ._model import GeminiLiveModel, _default_tls  # noqa: PLC0415 - the SDK loads on use

    assert isinstance(model, GeminiLiveModel)
    client_config = model.config["client_config"]
    options = client_config.get("http_options")
    vertex = uses_vertex(client_config.get("vertexai"))
    location = client_config.get("location") or os.environ.get("GOOGLE_CLOUD_LOCATION")
    base_url = _option(options, "base_url")
    if base_url:
        source = "client_config['http_options']['base_url']"
    elif vertex:
        region = location or "global"
        prefix = "" if region == "global" else f"{region}-"
        base_url = f"https://{prefix}aiplatform.googleapis.com/"
        source = f"Vertex AI in {region}"
    else:
        base_url, source = _GEMINI_API, f"the default URL ({_GEMINI_API})"
    parts = urlsplit(str(base_url))
    secure = parts.scheme in ("https", "wss")
    context = _option(_option(options, "async_client_args") or {}, "ssl")
    if not isinstance(context, ssl.SSLContext) and secure and not vertex:
        # What the plugin gives the SDK: SSL_CERT_FILE if set, else certifi's bundle.
        context = _default_tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    endpoint = Endpoint(
        host=parts.hostname or "",
        port=parts.port or (443 if secure else 80),
        tls=secure,
        ssl_context=context if isinstance(context, ssl.SSLContext) else None,
        source=source,
        trust_fix=(
            "set SSL_CERT_FILE to a PEM file holding your CA (it replaces certifi's bundle)"
        ),
    )
    key_env = next((name for name in API_KEY_ENVS if os.environ.get(name)), None)
    if client_config.get("api_key"):
        credentials = Credentials(found=True, source="client_config['api_key']", fix=_KEY_FIX)
    elif vertex:
        project = client_config.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        credentials = Credentials(
            found=bool(project) or bool(key_env),
            source=f"Vertex AI project {project!r} (Application Default Credentials)"
            if project
            else (key_env or ""),
            fix=_VERTEX_FIX,
        )
    elif key_env:
        credentials = Credentials(found=True, source=key_env, fix=_KEY_FIX)
    else:
        credentials = Credentials(found=False, fix=_KEY_FIX)
    return CheckInfo(endpoint=endpoint, credentials=credentials)
