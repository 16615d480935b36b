"""The two channel protocols :meth:`bidi_core.BidiAgent.run` drives.

An **input channel** produces what the user says (text or audio); an **output
channel** renders what the model says. Both are plain objects, so an application
can write its own (a WebRTC track, a telephony leg, a UI) in a few lines::

    class Printer:
        async def handle(self, event):
            if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                print(event.role, event.text)

        def clear_audio(self): ...
        def played_ms(self, response_id): return None
        async def aclose(self): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from .._protocol import ModelCapabilities
from ..events import BidiInputEvent, BidiOutputEvent, ToolResultEvent

__all__ = ["BidiInput", "BidiOutput"]


@runtime_checkable
class BidiInput(Protocol):
    """A source of user input for an agent.

    ``events(capabilities)`` yields ``str`` (a user text turn) or input events until
    the source is exhausted (end of file, end of stdin); the agent sends each one in
    order. ``capabilities`` are the model's, so a channel can convert audio to an
    accepted rate (``capabilities.input_sample_rates[0]``) and channel count (mono).
    """

    def events(self, capabilities: ModelCapabilities) -> AsyncIterator[str | BidiInputEvent]:
        """Yield user input until the source ends."""

    async def aclose(self) -> None:
        """Release the source (file, device); idempotent."""


@runtime_checkable
class BidiOutput(Protocol):
    """A sink for model output.

    The agent calls :meth:`handle` for every output event in order. It must return
    quickly: a channel that plays audio in real time queues it internally and plays
    it from its own task or device callback, so that a slow device never stalls the
    agent. On barge-in the agent calls :meth:`clear_audio` (drop queued, unplayed
    audio at once) and asks :meth:`played_ms` how much of the interrupted response
    was actually heard, to truncate the provider's copy of it.
    """

    async def handle(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Render one event: a model output event, or the ``ToolResultEvent`` the agent sent."""

    def clear_audio(self) -> None:
        """Drop audio queued for playback but not played yet."""

    def played_ms(self, response_id: str) -> float | None:
        """Milliseconds of ``response_id``'s audio played so far, or None if not tracked."""

    async def aclose(self) -> None:
        """Flush and release the sink (file, device); idempotent."""
