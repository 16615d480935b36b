"""OpenAI Realtime (GA WebSocket protocol) provider plugin for bidi.

Registered as ``openai_realtime``::

    from bidi_core import get_model

    model = get_model("openai_realtime", provider_config={"audio": {"voice": "cedar"}})

Importing this package imports neither ``websockets`` nor ``openai``; the model
class is loaded on first use. ``bidi_openai_realtime.testing`` holds a fake GA
Realtime server for offline tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._hooks import CAPABILITIES
from ._version import __version__

if TYPE_CHECKING:
    from ._model import OpenAIRealtimeModel
    from ._settings import DEFAULT_BASE_URL, DEFAULT_CONNECTION_LIMIT_S, DEFAULT_MODEL_ID, Secret

# list_models() imports this package (for _hooks): the settings and the wire code,
# with the event schema, load on first use.
_LAZY = {
    "OpenAIRealtimeModel": "._model",
    "DEFAULT_BASE_URL": "._settings",
    "DEFAULT_CONNECTION_LIMIT_S": "._settings",
    "DEFAULT_MODEL_ID": "._settings",
    "Secret": "._settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'bidi_openai_realtime' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CAPABILITIES",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECTION_LIMIT_S",
    "DEFAULT_MODEL_ID",
    "OpenAIRealtimeModel",
    "Secret",
    "__version__",
]
