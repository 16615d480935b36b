"""Registers ``openai_realtime`` with bidi; imports neither websockets nor openai."""

from __future__ import annotations

import os
from typing import Any

import bidi_core
from bidi_core import BidiModel, ModelCapabilities

#: What every :class:`~bidi_openai_realtime.OpenAIRealtimeModel` can take and produce.
CAPABILITIES = ModelCapabilities(
    input_modalities=("text", "audio", "image"),
    output_modalities=("text", "audio"),
    tools=True,
    interruption=True,
    output_truncation=True,
    resumption=False,
    connection_limit_s=3600.0,
    input_sample_rates=(24000,),
    output_sample_rate=24000,
    resamples_input=True,
)


def credentials_configured() -> bool:
    """Return whether an API key is configured (reads ``OPENAI_API_KEY`` only)."""
    return bool(os.environ.get("OPENAI_API_KEY"))


def _create(**config: Any) -> BidiModel:
    from ._model import OpenAIRealtimeModel  # noqa: PLC0415 - websockets is imported on use

    return OpenAIRealtimeModel(**config)


@bidi_core.hookimpl
def bidi_register_models(register: bidi_core.RegisterModel) -> None:
    """Register ``openai_realtime``."""
    register(
        "openai_realtime",
        _create,
        capabilities=CAPABILITIES,
        summary="OpenAI Realtime speech-to-speech (GA WebSocket protocol, gpt-realtime).",
        credentials=credentials_configured,
        env_vars=("OPENAI_API_KEY",),
        check="bidi_openai_realtime._check:check_info",
        fake="bidi_openai_realtime.testing:serve",
    )
