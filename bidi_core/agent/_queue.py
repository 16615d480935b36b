"""The agent's output queue: control events never wait, audio is bounded."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from ..audio import duration_ms
from ..events import BidiAudioDroppedEvent, BidiAudioStreamEvent

__all__ = ["OutputQueue"]


class _End:
    pass


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = _End()


class OutputQueue:
    """Events from the model's reader to the agent's consumer.

    ``put`` never blocks, so reading the model (and with it control events such as
    interruptions and tool calls) never waits for a slow consumer. Audio is bounded
    by duration: when more than ``max_audio_ms`` would be queued, the **oldest**
    queued audio chunks are dropped (the consumer keeps up with the newest speech,
    keeping latency bounded), counted, and reported by a
    :class:`~bidi_core.BidiAudioDroppedEvent` delivered before the next event.

    Args:
        max_audio_ms: Most audio (in milliseconds) held for the consumer.
    """

    def __init__(self, max_audio_ms: float) -> None:
        self.max_audio_ms = max_audio_ms
        self._items: collections.deque[Any] = collections.deque()
        self._audio_ms = 0.0
        self._ready = asyncio.Event()
        self._dropped_chunks = 0
        self._dropped_bytes = 0
        #: Totals over the queue's life.
        self.total_dropped_chunks = 0
        self.total_dropped_bytes = 0

    @property
    def queued_audio_ms(self) -> float:
        """Milliseconds of audio waiting for the consumer."""
        return self._audio_ms

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _ms(event: BidiAudioStreamEvent) -> float:
        return duration_ms(len(event.audio), event.sample_rate, event.channels)

    def put(self, event: Any) -> None:
        """Queue an event for the consumer (never blocks)."""
        if isinstance(event, BidiAudioStreamEvent):
            ms = self._ms(event)
            if self._audio_ms + ms > self.max_audio_ms:
                self._drop_oldest_audio(self._audio_ms + ms - self.max_audio_ms)
            self._audio_ms += ms
        self._items.append(event)
        self._ready.set()

    def _drop_oldest_audio(self, need_ms: float) -> None:
        kept: collections.deque[Any] = collections.deque()
        freed = 0.0
        for item in self._items:
            if freed < need_ms and isinstance(item, BidiAudioStreamEvent):
                ms = self._ms(item)
                freed += ms
                self._audio_ms -= ms
                self._dropped_chunks += 1
                self._dropped_bytes += len(item.audio)
                self.total_dropped_chunks += 1
                self.total_dropped_bytes += len(item.audio)
                continue
            kept.append(item)
        self._items = kept

    def clear_audio(self) -> int:
        """Drop every queued audio chunk at once (barge-in); returns how many."""
        before = len(self._items)
        self._items = collections.deque(
            item for item in self._items if not isinstance(item, BidiAudioStreamEvent)
        )
        self._audio_ms = 0.0
        return before - len(self._items)

    def end(self) -> None:
        """End the consumer's iteration after the queued events."""
        self._items.append(_END)
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """Raise *error* to the consumer after the queued events."""
        self._items.append(_Failure(error))
        self._ready.set()

    async def get(self) -> Any:
        """Return the next event; raises StopAsyncIteration at the end, or the failure."""
        while not self._items and not self._dropped_chunks:
            self._ready.clear()
            await self._ready.wait()
        if self._dropped_chunks:
            event = BidiAudioDroppedEvent(
                dropped_chunks=self._dropped_chunks, dropped_bytes=self._dropped_bytes
            )
            self._dropped_chunks = self._dropped_bytes = 0
            return event
        item = self._items.popleft()
        if isinstance(item, BidiAudioStreamEvent):
            self._audio_ms = max(0.0, self._audio_ms - self._ms(item))
        elif isinstance(item, _End):
            self._items.appendleft(item)  # stay ended for later calls
            raise StopAsyncIteration
        elif isinstance(item, _Failure):
            self._items.appendleft(_END)
            raise item.error
        return item
