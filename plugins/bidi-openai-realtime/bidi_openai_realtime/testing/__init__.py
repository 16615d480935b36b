"""A wire-faithful fake of the OpenAI Realtime GA WebSocket service, for offline tests.

Needs the plugin's ``test`` extra (``openai`` and ``pydantic`` validate every frame)::

    from bidi_openai_realtime.testing import serve

    async with serve() as fake:
        model = get_model("openai_realtime", **fake.model_kwargs)
        ...
        assert not fake.invalid  # every client event followed the GA schema

The fake is driven by :class:`bidi_core.testing.ScriptedAssistant` and maps its
faults to the service's real signals: ``error`` -> a GA ``error`` event,
``disconnect`` -> TCP close without a close frame, ``malformed`` -> a non-JSON
text frame, ``time_limit`` -> ``error`` ``session_expired`` then close 1001.
"""

from __future__ import annotations

from ._schema import (
    SchemaError,
    client_event_types,
    server_event_types,
    validate_client_event,
    validate_server_event,
)
from ._server import ConnectionRecord, OpenAIRealtimeFake, default_server_session, serve

__all__ = [
    "ConnectionRecord",
    "OpenAIRealtimeFake",
    "SchemaError",
    "client_event_types",
    "default_server_session",
    "serve",
    "server_event_types",
    "validate_client_event",
    "validate_server_event",
]
