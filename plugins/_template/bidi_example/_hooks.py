"""Registers ``example`` with bidi.

This module is imported by ``bidi_core.list_models()`` for every installed plugin, so it
must stay light: build the capabilities here, and import the model (and any provider
SDK) only inside the factory.
"""

from __future__ import annotations

import os
from typing import Any

import bidi_core
from bidi_core import BidiModel, ModelCapabilities

#: The environment variable holding the API key when ``client_config`` has none.
API_KEY_ENV = "EXAMPLE_API_KEY"

#: What every :class:`~bidi_example.ExampleModel` can take and produce.
CAPABILITIES = ModelCapabilities(
    input_modalities=("text", "audio"),
    output_modalities=("text", "audio"),
    tools=True,
    interruption=True,
    output_truncation=False,
    resumption=True,
    connection_limit_s=None,
    input_sample_rates=(16000,),
    output_sample_rate=24000,
    resamples_input=True,
)


def credentials_configured() -> bool:
    """Return whether an API key is configured (reads the environment only, no I/O)."""
    return bool(os.environ.get(API_KEY_ENV))


def _create(**config: Any) -> BidiModel:
    from ._model import ExampleModel  # noqa: PLC0415 - imported on use, not by list_models()

    return ExampleModel(**config)


@bidi_core.hookimpl
def bidi_register_models(register: bidi_core.RegisterModel) -> None:
    """Register ``example``."""
    register(
        "example",
        _create,
        capabilities=CAPABILITIES,
        summary="Example provider (JSON lines over TCP): the template to copy.",
        credentials=credentials_configured,
        env_vars=(API_KEY_ENV,),  # every variable the model reads: `bidi models` lists them
        fake="bidi_example.testing:serve",
        check="bidi_example._check:check_info",  # what `bidi check example` asks the plugin
    )
