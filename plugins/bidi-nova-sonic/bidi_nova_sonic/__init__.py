"""bidi-nova-sonic: Amazon Nova Sonic for bidi, over Bedrock's bidirectional stream.

::

    from bidi_core import get_model

    model = get_model("nova_sonic", provider_config={"audio": {"voice": "tiffany"}})

``NovaSonicModel`` is imported lazily, so ``import bidi_nova_sonic`` does not
import boto3 or the Bedrock SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._capabilities import CAPABILITIES, DEFAULT_MODEL_ID, NOVA_2_MODEL_ID
from ._version import __version__

if TYPE_CHECKING:
    from ._model import NovaSonicModel

__all__ = ["CAPABILITIES", "DEFAULT_MODEL_ID", "NOVA_2_MODEL_ID", "NovaSonicModel", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "NovaSonicModel":
        from ._model import NovaSonicModel  # noqa: PLC0415 - heavy SDK import on use

        return NovaSonicModel
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
