"""bidi-example: the template provider plugin for bidi.

Use it through the registry (``get_model("example", ...)``) or directly::

    from bidi_example import ExampleModel

The model class is imported on first use, so ``import bidi_example`` stays as light
as the hooks module (a real plugin would otherwise import its provider SDK here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._hooks import CAPABILITIES
from ._version import __version__

if TYPE_CHECKING:
    from ._model import DEFAULT_MODEL_ID, ExampleModel


def __getattr__(name: str) -> Any:
    if name in ("ExampleModel", "DEFAULT_MODEL_ID"):
        from . import _model  # noqa: PLC0415 - the SDK-importing module, on use

        return getattr(_model, name)
    msg = f"module 'bidi_example' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = ["CAPABILITIES", "DEFAULT_MODEL_ID", "ExampleModel", "__version__"]
