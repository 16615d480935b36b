"""``bidi serve``: a browser and phone gateway to any bidi model (``bidi-core[serve]``).

An ASGI app (Starlette) run by uvicorn. Every WebSocket connection is one
:class:`~bidi_core.BidiAgent` session with the server's model, tools and system
prompt; a client never chooses credentials, endpoints or tools::

    from bidi_core.serve import ServeConfig, create_app, serving

    app = create_app(ServeConfig(model="simulated", tools=("mytools:get_weather",)))
    async with serving(app) as url:   # uvicorn on 127.0.0.1, in this event loop
        ...

Endpoints: ``GET /`` (the browser page), ``WS /v1/session`` (the session protocol,
also spoken by the ``remote`` model), ``WS /v1/twilio`` (Twilio Media Streams),
``GET /healthz``. See the README for the protocol table, security and scaling.

Importing this package imports Starlette and uvicorn; ``import bidi_core`` does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._errors import MissingDependencyError
from ._config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ServeConfig, Token, is_loopback
from ._twilio import twiml

if TYPE_CHECKING:
    from ._app import create_app
    from ._run import run, serving

# Names that need Starlette and uvicorn, imported on first use: the CLI reads the
# configuration (and refuses a bad one) without importing the server stack.
_LAZY = {"create_app": "._app", "run": "._run", "serving": "._run"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'bidi_core.serve' has no attribute {name!r}"
        raise AttributeError(msg)
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if str(exc.name).split(".")[0] not in ("starlette", "uvicorn", "websockets"):
            raise
        msg = (
            f"bidi serve needs Starlette, uvicorn and websockets ({exc.name} is missing). "
            "Install them with: pip install 'bidi-core[serve]'"
        )
        raise MissingDependencyError(msg) from exc
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "ServeConfig",
    "Token",
    "create_app",
    "is_loopback",
    "run",
    "serving",
    "twiml",
]
