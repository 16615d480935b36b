"""The API key never shows: repr, str, DEBUG logs of every logger, events, error messages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bidi_core import BidiConnectionError, BidiErrorEvent, BidiTextInputEvent
from bidi_gemini_live.testing import serve

from .conftest import make_model

SECRET = "AIzaSyTEST-soak-secret-0123456789abcdef"


def leaks(caplog: pytest.LogCaptureFixture, *texts: Any) -> list[str]:
    """Every captured log record (any logger, with args and tracebacks) and text that shows it."""
    found = [str(t)[:200] for t in texts if SECRET in str(t)]
    for record in caplog.records:
        if record.name == "websockets.server":
            continue  # the fake's own side of the socket: test infrastructure
        rendered = f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        if SECRET in rendered:
            found.append(rendered[:200])
    return found


async def drain(events: Any, seen: list[Any]) -> None:
    """Read events (keeping their dicts) until receive() ends or raises."""
    async with asyncio.timeout(10):
        async for event in events:
            seen.append(event.to_dict())  # noqa: PERF401 - keep what came before a raise


async def test_the_api_key_never_appears(caplog: pytest.LogCaptureFixture) -> None:
    """Used on the wire, but absent everywhere a user or a log file could see it."""
    caplog.set_level(logging.DEBUG)  # every logger: websockets, google_genai, httpx, bidi ...
    seen: list[Any] = []
    # 1. A rejected handshake whose reason echoes the key.
    async with serve(reject_setup=(1008, f"API key {SECRET} not valid.")) as fake:
        model = make_model(fake, client_config={"api_key": SECRET})
        seen += [repr(model), str(model), model.config]
        with pytest.raises(BidiConnectionError) as rejected:
            await model.start()
        seen += [str(rejected.value), repr(rejected.value), repr(rejected.value.__cause__)]
    # 2. A working session: an error status frame and a close reason that echo the key.
    async with serve() as fake:
        model = make_model(fake, client_config={"api_key": SECRET})
        await model.start()
        events = model.receive()
        try:
            await model.send(BidiTextInputEvent(text="hello"))
            await fake.inject(
                {"code": 403, "message": f"key {SECRET} quota", "status": "X"}, raw=True
            )
            async with asyncio.timeout(10):
                async for event in events:
                    seen.append(event.to_dict())
                    if isinstance(event, BidiErrorEvent):
                        break
            await fake.close_connections(1008, f"key {SECRET} revoked")
            with pytest.raises(BidiConnectionError) as closed:
                await drain(events, seen)
            seen += [str(closed.value), repr(closed.value), repr(model)]
        finally:
            await model.stop()
        assert fake.headers[0]["x-goog-api-key"] == SECRET  # it was really used
    found = leaks(caplog, *seen)
    assert found == [], "\n".join(found)
