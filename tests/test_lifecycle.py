"""BidiModelBase: the lifecycle rules plugins get for free, including the racy corners."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiConnectionError,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiModelBase,
    BidiModelStateError,
    BidiModelTimeoutError,
    BidiTextInputEvent,
    ModelCapabilities,
    ModelState,
    ProviderProtocolError,
)
from bidi_core._base import cancel_and_wait
from bidi_core.audio import StreamResampler


class Scripted(BidiModelBase):
    """A model whose provider side the test controls."""

    provider = "scripted"

    def __init__(self) -> None:
        super().__init__(model_id="scripted-1", config={})
        self.open_gate = asyncio.Event()
        self.open_gate.set()
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[Any] = []
        self.closes: list[bool] = []
        self.opened = 0
        self.emit_on_open: list[Any] = []
        self.graceful_close: Any = None  # None, an exception, or "hang"
        self.ids = iter(f"conn-{i}" for i in range(1, 100))

    def _new_connection_id(self) -> str:
        return next(self.ids)

    async def _open(self, **kwargs: Any) -> None:
        await self.open_gate.wait()
        self.opened += 1
        for event in self.emit_on_open:
            self._emit(event)

    async def _read(self) -> None:
        while True:
            frame = await self.frames.get()
            if frame is None:
                return  # the provider closed the connection
            if isinstance(frame, BaseException):
                raise frame
            self._emit(frame)

    async def _send(self, event: Any) -> None:
        self.sent.append(event)

    async def _close(self, *, graceful: bool) -> None:
        self.closes.append(graceful)
        if graceful and self.graceful_close == "hang":
            await asyncio.Event().wait()
        if graceful and isinstance(self.graceful_close, BaseException):
            raise self.graceful_close


async def first_events(model: BidiModelBase, count: int) -> list[Any]:
    out = []
    async with asyncio.timeout(10):
        async for event in model.receive():
            out.append(event)
            if len(out) == count:
                break
    return out


async def test_stop_during_start_waits_and_releases_what_start_opened() -> None:
    """stop() while _open() runs lets it finish, then closes it: nothing leaks."""
    model = Scripted()
    model.open_gate.clear()
    starting = asyncio.create_task(model.start())
    await asyncio.sleep(0)
    assert model.state is ModelState.STARTING
    stopping = asyncio.create_task(model.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done()  # waits for the open to finish
    model.open_gate.set()
    await starting
    await stopping
    assert model.opened == 1
    assert model.closes == [True, False]  # graceful, then release
    assert model.state is ModelState.IDLE
    assert model._reader is None
    with pytest.raises(BidiModelStateError, match="before start"):
        await model.send(BidiTextInputEvent(text="x"))


async def test_cancelled_start_releases_and_allows_a_new_start() -> None:
    """Cancelling start() mid-open releases resources; the model can be started again."""
    model = Scripted()
    model.open_gate.clear()
    starting = asyncio.create_task(model.start())
    await asyncio.sleep(0)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert model.state is ModelState.IDLE
    assert model.closes == [False]
    model.open_gate.set()
    await model.start()
    assert model.state is ModelState.OPEN
    await model.stop()


async def test_failed_open_leaves_the_model_reusable() -> None:
    """An exception from _open() propagates; the model is IDLE and can start again."""

    class FailsOnce(Scripted):
        async def _open(self, **kwargs: Any) -> None:
            if not self.opened:
                self.opened += 1
                raise BidiConnectionError("refused", provider="scripted")
            await super()._open(**kwargs)

    model = FailsOnce()
    with pytest.raises(BidiConnectionError, match="refused"):
        await model.start()
    assert model.state is ModelState.IDLE
    await model.start()
    await model.stop()


async def test_concurrent_stops_both_wait_for_the_release() -> None:
    """Two stop() calls at once both return after resources are released, once."""
    model = Scripted()
    await model.start()
    await asyncio.gather(model.stop(), model.stop())
    assert model.closes == [True, False]
    assert model.state is ModelState.IDLE


async def test_failing_graceful_close_still_releases() -> None:
    """If the shutdown sequence raises, sockets and tasks are released anyway."""
    model = Scripted()
    model.graceful_close = OSError("broken pipe")
    await model.start()
    await model.stop()
    assert model.closes == [True, False]
    assert model.state is ModelState.IDLE
    assert model._reader is None


async def test_hanging_graceful_close_is_bounded_by_close_timeout() -> None:
    """A shutdown sequence that never finishes is abandoned after close_timeout."""
    model = Scripted()
    model.close_timeout = 0.05
    model.graceful_close = "hang"
    await model.start()
    await asyncio.wait_for(model.stop(), 10)
    assert model.closes == [True, False]
    assert model.state is ModelState.IDLE


async def test_cancelled_stop_propagates_and_still_ends_idle() -> None:
    """Cancelling stop() raises CancelledError in the caller; the model still ends IDLE."""
    model = Scripted()
    model.graceful_close = "hang"
    await model.start()
    stopping = asyncio.create_task(model.stop())
    await asyncio.sleep(0.01)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert model.state is ModelState.IDLE
    assert model.closes == [True, False]
    await model.start()  # usable again
    model.graceful_close = None
    await model.stop()


async def test_cancel_and_wait_propagates_the_callers_cancellation() -> None:
    """A caller cancelled while waiting is cancelled; the task's late error is retrieved."""
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))

    async def slow_to_die() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            raise ValueError("late failure") from None

    inner = asyncio.create_task(slow_to_die())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait([inner])
    del inner
    import gc

    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert unretrieved == []


async def test_receive_after_a_failure_raises_it_again() -> None:
    """A failed connection keeps failing receive() instead of hanging it."""
    model = Scripted()
    await model.start()
    await model.frames.put(ProviderProtocolError("garbled", provider="scripted"))
    for _ in range(2):
        with pytest.raises(ProviderProtocolError, match="garbled"):
            await first_events(model, 99)
    await model.stop()


async def test_raw_reader_exception_becomes_a_typed_error() -> None:
    """An untyped exception from _read() surfaces as BidiConnectionError, chained."""
    model = Scripted()
    await model.start()
    cause = ConnectionResetError("peer reset")
    await model.frames.put(cause)
    with pytest.raises(BidiConnectionError, match="ConnectionResetError: peer reset") as info:
        await first_events(model, 99)
    assert info.value.__cause__ is cause
    assert info.value.provider == "scripted"
    await model.stop()


async def test_provider_closing_the_connection_is_a_retryable_error() -> None:
    """_read() returning while open means the provider closed: BidiConnectionError."""
    model = Scripted()
    await model.start()
    await model.frames.put(None)
    with pytest.raises(BidiConnectionError, match="closed by the provider") as info:
        await first_events(model, 99)
    assert info.value.retryable
    await model.stop()


async def test_connection_start_comes_before_events_emitted_while_opening() -> None:
    """BidiConnectionStartEvent is first even if _open() already emitted events."""
    model = Scripted()
    model.emit_on_open = [BidiErrorEvent(message="early")]
    await model.start()
    first, second = await first_events(model, 2)
    await model.stop()
    assert first == BidiConnectionStartEvent(connection_id="conn-1", model="scripted-1")
    assert second == BidiErrorEvent(message="early")


async def test_each_start_is_a_new_connection_and_old_receivers_end() -> None:
    """After stop() and start(), a receiver of the old connection ends; ids are per connection."""
    model = Scripted()
    await model.start()
    old = aiter(model.receive())
    assert (await anext(old)).connection_id == "conn-1"  # type: ignore[attr-defined]
    await model.stop()
    await model.start()
    with pytest.raises(StopAsyncIteration):
        await anext(old)
    (event,) = await first_events(model, 1)
    assert event.connection_id == "conn-2"
    assert model.connection_id == "conn-2"
    await model.stop()
    assert model.connection_id is None


async def test_connection_limit_raises_timeout_with_restart_config() -> None:
    """connection_limit_s() makes receive() raise BidiModelTimeoutError(**_restart_config())."""

    class Limited(Scripted):
        def connection_limit_s(self) -> float | None:
            return 0.05

        def _restart_config(self) -> dict[str, Any]:
            return {"resume": "abc"}

    model = Limited()
    await model.start()
    with pytest.raises(BidiModelTimeoutError) as info:
        await first_events(model, 99)
    assert info.value.restart_config == {"resume": "abc"}
    assert "limit of 0.05 s" in str(info.value)
    with pytest.raises(BidiModelTimeoutError):
        await model.send(BidiTextInputEvent(text="late"))
    await model.stop()


async def test_capabilities_set_after_init_are_used_for_input() -> None:
    """A subclass may set capabilities after super().__init__(); input follows them."""

    class Late(Scripted):
        def __init__(self) -> None:
            super().__init__()
            self.capabilities = ModelCapabilities(input_sample_rates=(24000,))

    model = Late()
    await model.start()
    await model.send(BidiAudioInputEvent(audio=bytes(960), sample_rate=24000))
    await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000))
    await model.stop()
    native, resampled = model.sent
    assert (native.sample_rate, len(native.audio)) == (24000, 960)  # passed through
    assert resampled.sample_rate == 24000
    assert abs(len(resampled.audio) - 960) <= 2  # within one sample (carried to the next chunk)


async def test_resampler_state_does_not_leak_into_the_next_connection() -> None:
    """Each connection resamples from a clean state."""
    chunk = bytes(range(256)) * 4  # 512 non-silent samples
    expected = StreamResampler(44100, 16000).process(chunk)
    model = Scripted()
    for _ in range(2):
        await model.start()
        await model.send(BidiAudioInputEvent(audio=chunk[:-2], sample_rate=44100))
        await model.stop()
        model.sent.clear()
        await model.start()
        await model.send(BidiAudioInputEvent(audio=chunk, sample_rate=44100))
        await model.stop()
        assert model.sent[0].audio == expected
        model.sent.clear()


async def test_async_with_starts_and_stops() -> None:
    """`async with model:` starts it and always stops it."""
    model = Scripted()
    states = []

    async def use() -> None:
        async with model:
            states.append(model.state)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await use()
    assert states == [ModelState.OPEN]
    assert model.state is ModelState.IDLE
    assert model.closes == [True, False]


async def test_stop_before_start_is_a_no_op() -> None:
    """stop() on a model that never started does nothing and raises nothing."""
    model = Scripted()
    await model.stop()
    assert model.closes == []


def test_base_capabilities_default() -> None:
    """A subclass that declares nothing gets the default ModelCapabilities."""
    assert Scripted().capabilities == ModelCapabilities()
    assert attrs.has(type(Scripted().capabilities))


async def test_audio_before_a_provider_side_end_is_sent_again_on_the_restart() -> None:
    """_provider_ended() keeps the last audio_replay_ms; start(**restart_config) resends it."""
    model = Scripted()
    rate = model.input_sample_rate()
    chunks = [bytes([i]) * (rate * 20 // 1000 * 2) for i in range(15)]
    await model.start()
    for pcm in chunks[:10]:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=rate))
    await asyncio.sleep(0.7)  # these ten are now older than the 500 ms window
    for pcm in chunks[10:]:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=rate))
    model._provider_ended()
    model._fail(model._timeout_error("the provider ended the session"))
    with pytest.raises(BidiModelTimeoutError) as info:
        await first_events(model, 99)
    assert info.value.restart_config == {"replay_audio_ms": 100}
    await model.stop()
    model.sent.clear()
    await model.start(**info.value.restart_config)
    # First, in order, joined into sends of at most REPLAY_PIECE_MS (200 ms).
    assert [e.audio for e in model.sent] == [b"".join(chunks[10:])]
    await model.stop()
    # A plain start() (no restart_config) sends nothing old.
    model._provider_ended()
    model.sent.clear()
    await model.start()
    assert model.sent == []
    await model.stop()


async def test_a_plugin_that_remembers_written_audio_gets_its_unsent_chunks_replayed() -> None:
    """remembers_written_audio: only chunks the plugin says were written count as sent.

    What the plugin's transport never wrote is replayed whole, however old, after
    the recent written audio, in order.
    """

    class Queued(Scripted):
        remembers_written_audio = True

    model = Queued()
    rate = model.input_sample_rate()
    chunks = [bytes([i]) * (rate * 20 // 1000 * 2) for i in range(6)]
    await model.start()
    for pcm in chunks:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=rate))
    assert not model._recent_audio  # send() returning is not counted as written
    for pcm in chunks[:3]:
        model._remember_audio(pcm)  # the transport wrote these three
    model._provider_ended(unsent=chunks[3:])
    model._fail(model._timeout_error("the provider ended the session"))
    with pytest.raises(BidiModelTimeoutError) as info:
        await first_events(model, 99)
    assert info.value.restart_config == {"replay_audio_ms": 120}
    await model.stop()
    model.sent.clear()
    await model.start(**info.value.restart_config)
    assert [e.audio for e in model.sent] == [b"".join(chunks)]
    await model.stop()


async def test_audio_replay_can_be_turned_off() -> None:
    """With audio_replay_ms = 0 a provider-side end keeps nothing and says so."""
    model = Scripted()
    model.audio_replay_ms = 0
    rate = model.input_sample_rate()
    await model.start()
    await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=rate))
    model._provider_ended()
    assert model._timeout_error("ended").restart_config == {}
    await model.stop()


def test_replayed_audio_goes_out_in_few_sends_of_at_most_200_ms() -> None:
    """Kept chunks are joined in order into sends of at most REPLAY_PIECE_MS."""
    from bidi_core._base import REPLAY_PIECE_MS

    model = Scripted()
    size = model.input_sample_rate() * 2 * 20 // 1000
    chunks = [bytes([i]) * size for i in range(25)]  # 500 ms
    pieces = model._replay_pieces(chunks)
    assert b"".join(pieces) == b"".join(chunks)
    assert [len(p) // size for p in pieces] == [REPLAY_PIECE_MS // 20] * 2 + [5]
