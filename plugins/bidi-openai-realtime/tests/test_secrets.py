"""The API key never shows: repr, str, DEBUG logs of every logger, events, error messages."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bidi_core import BidiConnectionError, BidiErrorEvent, BidiTextInputEvent, ProviderError
from bidi_openai_realtime import OpenAIRealtimeModel
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve

SECRET = "sk-proj-TESTsecret0123456789abcdefXYZ"


def leaks(caplog: pytest.LogCaptureFixture, *texts: Any) -> list[str]:
    """Every captured log record (any logger, with args and tracebacks) and text that shows it."""
    found = [str(t)[:200] for t in texts if SECRET in str(t)]
    for record in caplog.records:
        if record.name.startswith(("websockets.server", "bidi_openai_realtime.testing")):
            continue  # the fake's own side of the socket: test infrastructure
        rendered = f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        if SECRET in rendered:
            found.append(rendered[:200])
    return found


def model_for(fake: OpenAIRealtimeFake) -> OpenAIRealtimeModel:
    client = {**fake.model_kwargs["client_config"], "api_key": SECRET}
    return OpenAIRealtimeModel(client_config=client)


async def server_send(fake: OpenAIRealtimeFake, event: dict[str, Any]) -> None:
    """Send a raw server event on every open connection of the fake."""
    assert fake._server is not None
    for connection in list(fake._server.connections):
        await connection.send(json.dumps(event))


async def drain(events: Any, seen: list[Any], stop: type | None = None) -> None:
    """Read events (keeping their dicts) until one of type *stop*, or until receive() raises."""
    async with asyncio.timeout(10):
        async for event in events:
            seen.append(event.to_dict())
            if stop is not None and isinstance(event, stop):
                return


def echo(where: str) -> dict[str, Any]:
    message = f"Incorrect API key provided: {SECRET} ({where})."
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


async def test_the_api_key_never_appears(caplog: pytest.LogCaptureFixture) -> None:
    """Used on the wire, but absent everywhere a user or a log file could see it."""
    caplog.set_level(logging.DEBUG)  # every logger: websockets, bidi ...
    seen: list[Any] = []
    # 1. A handshake refused with HTTP 401.
    async with serve(api_key="another-key") as fake:
        model = model_for(fake)
        seen += [repr(model), str(model), model.config, repr(model.config)]
        with pytest.raises(BidiConnectionError) as refused:
            await model.start()
        seen += [str(refused.value), repr(refused.value), repr(refused.value.__cause__)]
    # 2. A session rejected in its handshake by an error that echoes the key.
    async with serve(api_key=SECRET, stall_handshake=True) as fake:
        model = model_for(fake)
        start = asyncio.create_task(model.start())
        while not fake._server or not fake._server.connections:  # type: ignore[truthy-bool]
            await asyncio.sleep(0.01)
        await server_send(fake, echo("handshake"))
        with pytest.raises(ProviderError) as rejected:
            await start
        seen += [str(rejected.value), repr(rejected.value), repr(rejected.value.__cause__)]
    # 3. A working session: an error event echoing the key, then a close reason with it.
    async with serve(api_key=SECRET) as fake:
        model = model_for(fake)
        await model.start()
        events = model.receive()
        try:
            await model.send(BidiTextInputEvent(text="hello"))
            await server_send(fake, echo("session"))
            await drain(events, seen, BidiErrorEvent)
            for connection in list(fake._server.connections):  # type: ignore[union-attr]
                await connection.close(1008, f"key {SECRET} revoked")
            with pytest.raises(BidiConnectionError) as closed:
                await drain(events, seen)
            seen += [str(closed.value), repr(closed.value), repr(model)]
        finally:
            await model.stop()
        assert fake.connections[0].headers["authorization"] == f"Bearer {SECRET}"
    found = leaks(caplog, *seen)
    assert found == [], "\n".join(found)
