"""Gemini Live provider plugin for bidi: ``get_model("gemini_live", ...)``.

The model class is imported lazily, so ``import bidi_gemini_live`` does not import
the ``google-genai`` SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._hooks import CAPABILITIES, DEFAULT_MODEL_ID
from ._version import __version__

if TYPE_CHECKING:
    from ._model import GeminiLiveModel

__all__ = ["CAPABILITIES", "DEFAULT_MODEL_ID", "GeminiLiveModel", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "GeminiLiveModel":
        from ._model import GeminiLiveModel  # noqa: PLC0415 - imports the SDK

        globals()[name] = GeminiLiveModel
        return GeminiLiveModel
    msg = f"module 'bidi_gemini_live' has no attribute {name!r}"
    raise AttributeError(msg)
