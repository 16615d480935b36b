"""Helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from bidi_core.events import (
    BidiAudioInputEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
)
from bidi_core.testing import speak

STEP = 15.0


class Reader:
    """Reads a model's events, keeping them all."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seen: list[BidiOutputEvent] = []
        self._iter: AsyncIterator[BidiOutputEvent] = aiter(model.receive())

    async def until(self, predicate: Callable[[BidiOutputEvent], bool]) -> list[BidiOutputEvent]:
        start = len(self.seen)
        while True:
            async with asyncio.timeout(STEP):
                event = await anext(self._iter)
            self.seen.append(event)
            if predicate(event):
                return self.seen[start:]

    async def turn(self, text: str) -> list[BidiOutputEvent]:
        await self.model.send(BidiTextInputEvent(text=text))
        return await self.until(
            lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == "complete"
        )

    async def aclose(self) -> None:
        closer = getattr(self._iter, "aclose", None)
        if closer is not None:
            await closer()


def names(events: list[dict[str, Any]]) -> list[str]:
    """The Nova event names of decoded input events."""
    return [next(iter(e["event"])) for e in events]


def body(event: dict[str, Any]) -> dict[str, Any]:
    """The body of one decoded Nova event."""
    return next(iter(event["event"].values()))  # type: ignore[no-any-return]


async def send_speech(model: Any, text: str, rate: int = 16000, tail_ms: int = 600) -> int:
    """Stream *text* as speech in 20 ms chunks; return the bytes sent."""
    pcm = speak(text, rate) + bytes(rate * tail_ms // 1000 * 2)
    step = rate * 20 // 1000 * 2
    for offset in range(0, len(pcm), step):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=rate))
    return len(pcm)
