"""Registers the core's ``simulated`` model through the ``bidi`` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._protocol import BidiModel, ModelCapabilities
from .hookspecs import RegisterModel, hookimpl

if TYPE_CHECKING:
    from .diagnostics import CheckInfo


def simulated_capabilities(
    *, input_rate: int = 16000, output_rate: int = 24000, limit: float | None = None
) -> ModelCapabilities:
    """Return the capabilities of a simulated model with these settings."""
    return ModelCapabilities(
        input_modalities=("text", "audio", "image"),
        output_modalities=("text", "audio"),
        tools=True,
        interruption=True,
        output_truncation=True,
        resumption=True,
        connection_limit_s=limit,
        input_sample_rates=(input_rate,),
        output_sample_rate=output_rate,
        resamples_input=True,
        non_blocking_tools=True,
    )


def _create(**config: Any) -> BidiModel:
    from .simulated import SimulatedModel  # noqa: PLC0415 - keep list_models() light

    return SimulatedModel(**config)


def check_info(model: BidiModel) -> CheckInfo:
    """``bidi check simulated``: no endpoint and no credentials to find."""
    from .diagnostics import CheckInfo, Credentials  # noqa: PLC0415

    del model
    return CheckInfo(endpoint=None, credentials=Credentials(found=True))


@hookimpl
def bidi_register_models(register: RegisterModel) -> None:
    """Register ``simulated``."""
    register(
        "simulated",
        _create,
        capabilities=simulated_capabilities(),
        summary="In-process scripted model for demos and tests (no network, no credentials).",
        credentials=lambda: True,
        env_vars=(),
        check="bidi_core._simulated_hooks:check_info",
    )
