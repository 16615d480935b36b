"""Registers ``gemini_live`` with bidi; imports no provider SDK."""

from __future__ import annotations

import os
from typing import Any

import bidi_core
from bidi_core import BidiModel, ModelCapabilities

from ._credentials import API_KEY_ENVS, ENV_VARS, uses_vertex

__all__ = ["CAPABILITIES", "DEFAULT_MODEL_ID", "bidi_register_models", "credentials_configured"]

#: The default Gemini Live model.
DEFAULT_MODEL_ID = "gemini-2.5-flash-native-audio-preview-09-2025"

#: Capabilities of a default-configured :class:`~bidi_gemini_live.GeminiLiveModel`.
CAPABILITIES = ModelCapabilities(
    input_modalities=("text", "audio", "image"),
    output_modalities=("text", "audio"),
    tools=True,
    interruption=True,
    output_truncation=False,
    resumption=True,
    connection_limit_s=600.0,
    input_sample_rates=(16000,),
    output_sample_rate=24000,
    resamples_input=True,
    image_mime_types=("image/jpeg", "image/png"),
    non_blocking_tools=True,
)


def credentials_configured() -> bool:
    """Return whether Gemini credentials are configured (environment variables only, no I/O).

    True when ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` is set, or when Vertex AI is
    selected (``GOOGLE_GENAI_USE_VERTEXAI``) with ``GOOGLE_CLOUD_PROJECT``.
    """
    if any(os.environ.get(name) for name in API_KEY_ENVS):
        return True
    return uses_vertex() and bool(os.environ.get("GOOGLE_CLOUD_PROJECT"))


def _create(**config: Any) -> BidiModel:
    from ._model import GeminiLiveModel  # noqa: PLC0415 - the SDK is imported on use

    return GeminiLiveModel(**config)


@bidi_core.hookimpl
def bidi_register_models(register: bidi_core.RegisterModel) -> None:
    """Register ``gemini_live``."""
    register(
        "gemini_live",
        _create,
        capabilities=CAPABILITIES,
        summary="Google Gemini Live API (BidiGenerateContent) through google-genai.",
        credentials=credentials_configured,
        env_vars=ENV_VARS,
        check="bidi_gemini_live._check:check_info",
        fake="bidi_gemini_live.testing:serve",
    )
