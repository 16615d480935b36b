"""Registers the core's ``remote`` model (a ``bidi serve`` gateway) through the entry point.

Imports nothing heavy: websockets is imported by :mod:`bidi_core.remote` on use.
"""

from __future__ import annotations

from typing import Any

from ._protocol import BidiModel, ModelCapabilities
from .hookspecs import RegisterModel, hookimpl

#: Before ``start()`` connects; then the gateway's model's rates and modalities apply.
REMOTE_CAPABILITIES = ModelCapabilities(
    input_modalities=("text", "audio", "image"),
    output_modalities=("text", "audio"),
    tools=False,  # tools run on the gateway; a client cannot send tool results
    interruption=True,
    output_truncation=True,
    resumption=False,
    connection_limit_s=None,
    input_sample_rates=(16000,),
    output_sample_rate=24000,
    resamples_input=True,
)


def _create(**config: Any) -> BidiModel:
    from .remote import RemoteModel  # noqa: PLC0415 - websockets is imported on use

    return RemoteModel(**config)


@hookimpl
def bidi_register_models(register: RegisterModel) -> None:
    """Register ``remote``."""
    register(
        "remote",
        _create,
        capabilities=REMOTE_CAPABILITIES,
        summary="A bidi serve gateway, used like any model (needs bidi-core[remote]).",
    )
