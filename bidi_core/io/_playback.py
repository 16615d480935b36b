"""Which response's audio has actually been played: a FIFO model of the playback queue."""

from __future__ import annotations

import collections

from ..events import BidiAudioStreamEvent

__all__ = ["PlaybackTracker"]

_Format = tuple[int, int]  # (sample_rate, channels)


def _ms(nbytes: int, fmt: _Format) -> float:
    rate, channels = fmt
    return nbytes * 1000.0 / (2 * channels * rate)


class _Segment:
    __slots__ = ("fmt", "nbytes", "response_id")

    def __init__(self, response_id: str | None, fmt: _Format, nbytes: int) -> None:
        self.response_id = response_id
        self.fmt = fmt
        self.nbytes = nbytes


class PlaybackTracker:
    """Track audio queued for playback, in order, across responses.

    An output channel calls :meth:`received` for every audio chunk it queues and
    :meth:`played` with the number of bytes the device consumed from the head of
    its queue. The tracker attributes those bytes to the responses they came from,
    so after a barge-in :meth:`played_ms` says how much of the interrupted response
    the user heard, which is what the agent truncates the provider's copy to.

    Bytes are counted exactly per response and format (PCM16, the chunk's own
    ``sample_rate`` and ``channels``); milliseconds are derived on demand, so chunks
    at different rates can share one queue. The tracker is pure and synchronous;
    a channel that calls it from a device thread guards it with a lock.

    Example::

        tracker = PlaybackTracker()
        tracker.received(chunk)          # 100 ms of response "r1" queued
        tracker.played(1600)             # the device took 50 ms at 16 kHz mono
        tracker.played_ms("r1")          # 50.0
        tracker.clear()                  # barge-in: 50.0 ms dropped
    """

    def __init__(self) -> None:
        self._queue: collections.deque[_Segment] = collections.deque()
        self._queued_bytes = 0
        self._received: dict[str | None, dict[_Format, int]] = {}
        self._played: dict[str | None, dict[_Format, int]] = {}

    @staticmethod
    def _add(
        table: dict[str | None, dict[_Format, int]],
        response_id: str | None,
        fmt: _Format,
        nbytes: int,
    ) -> None:
        per_format = table.setdefault(response_id, {})
        per_format[fmt] = per_format.get(fmt, 0) + nbytes

    def received(self, event: BidiAudioStreamEvent) -> None:
        """Queue one chunk of output audio behind everything queued before it."""
        nbytes = len(event.audio)
        if nbytes == 0:
            return
        fmt = (event.sample_rate, event.channels)
        if fmt[0] <= 0 or fmt[1] <= 0:
            msg = (
                f"Audio chunk has sample_rate={event.sample_rate!r} and "
                f"channels={event.channels!r}; both must be positive."
            )
            raise ValueError(msg)
        tail = self._queue[-1] if self._queue else None
        if tail is not None and tail.response_id == event.response_id and tail.fmt == fmt:
            tail.nbytes += nbytes
        else:
            tail = _Segment(event.response_id, fmt, nbytes)
            self._queue.append(tail)
        self._queued_bytes += nbytes
        self._add(self._received, event.response_id, fmt, nbytes)

    def _take(self, nbytes: int, *, count: bool) -> float:
        """Remove up to *nbytes* from the head; returns their duration in ms."""
        if nbytes < 0:
            msg = f"Byte count must not be negative (got {nbytes!r})."
            raise ValueError(msg)
        taken_ms = 0.0
        while nbytes > 0 and self._queue:
            head = self._queue[0]
            n = min(nbytes, head.nbytes)
            if count:
                self._add(self._played, head.response_id, head.fmt, n)
            taken_ms += _ms(n, head.fmt)
            head.nbytes -= n
            self._queued_bytes -= n
            nbytes -= n
            if head.nbytes == 0:
                self._queue.popleft()
        return taken_ms

    def played(self, nbytes: int) -> float:
        """Record that the device consumed *nbytes* from the head of the queue.

        Bytes beyond what is queued (the device played silence) are ignored.

        Returns:
            The milliseconds of queued audio this accounted for.
        """
        return self._take(nbytes, count=True)

    def discard(self, nbytes: int) -> float:
        """Drop *nbytes* from the head of the queue without counting them as played.

        Returns:
            The milliseconds dropped.
        """
        return self._take(nbytes, count=False)

    def clear(self) -> float:
        """Drop everything not played yet (barge-in).

        Returns:
            The milliseconds of audio dropped.
        """
        dropped = sum(_ms(s.nbytes, s.fmt) for s in self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        return dropped

    def played_ms(self, response_id: str | None) -> float:
        """Milliseconds of *response_id*'s audio played so far (0.0 if none)."""
        return sum(_ms(n, fmt) for fmt, n in self._played.get(response_id, {}).items())

    def received_ms(self, response_id: str | None) -> float:
        """Milliseconds of *response_id*'s audio received so far, played or not (0.0 if none)."""
        return sum(_ms(n, fmt) for fmt, n in self._received.get(response_id, {}).items())

    @property
    def queued_bytes(self) -> int:
        """Bytes received and not yet played, discarded or cleared."""
        return self._queued_bytes

    @property
    def queued_ms(self) -> float:
        """Milliseconds of audio received and not yet played, discarded or cleared."""
        return sum(_ms(s.nbytes, s.fmt) for s in self._queue)

    def forget(self, response_id: str | None) -> None:
        """Drop the played/received totals of a finished response (queued audio stays)."""
        self._received.pop(response_id, None)
        self._played.pop(response_id, None)

    def __repr__(self) -> str:
        return (
            f"<PlaybackTracker queued={self.queued_ms:.0f} ms "
            f"in {len(self._queue)} segment(s), {len(self._received)} response(s)>"
        )
