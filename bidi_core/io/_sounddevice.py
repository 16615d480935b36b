"""Microphone in and speaker out through ``sounddevice`` (the ``sounddevice`` extra).

Both channels use sounddevice's *raw* streams (plain byte buffers), so NumPy is
needed only for resampling (through ``soxr``), not for the device itself. Device
callbacks run on a PortAudio thread: the microphone hands each block to the event
loop with ``call_soon_threadsafe``; the speaker's callback pulls from a
lock-guarded jitter buffer and records what it played in a
:class:`~bidi_core.io.PlaybackTracker`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import logging
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, Final

from .._config import check_number, check_sample_rate
from .._protocol import ModelCapabilities
from ..audio import to_channels
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    ToolResultEvent,
)
from ._errors import AudioDeviceError, MissingDependencyError
from ._playback import PlaybackTracker
from ._resample import Resampler, choose_input_rate

__all__ = ["SOUNDDEVICE_EXTRA", "MicrophoneInput", "SpeakerOutput"]

logger = logging.getLogger("bidi_core.io")

#: How to install the microphone and speaker support.
SOUNDDEVICE_EXTRA: Final = (
    "pip install 'sounddevice>=0.4' 'soxr>=0.3' (bidi-core's [sounddevice] extra; from a "
    "clone of bidi: ./dev install 'bidi-core[sounddevice]')"
)
_DEVICE_HINT = "List the devices with `python -m sounddevice`."
_DROP_LOG_EVERY = 50  # log the first dropped block, then every 50th


def _import_sounddevice(what: str) -> ModuleType:
    try:
        sounddevice = importlib.import_module("sounddevice")  # optional extra, loaded on use
    except ImportError as exc:
        msg = (
            f"{what} needs the sounddevice package, which is not installed ({exc}). "
            f"Install it with: {SOUNDDEVICE_EXTRA}"
        )
        raise MissingDependencyError(msg) from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        msg = (
            f"{what} needs the PortAudio library, which sounddevice could not load ({exc}). "
            "Install it with the system's package manager, e.g. "
            "`apt-get install libportaudio2` or `brew install portaudio`."
        )
        raise MissingDependencyError(msg) from exc
    return sounddevice


def _device_errors(sd: ModuleType) -> tuple[type[BaseException], ...]:
    port_audio_error = getattr(sd, "PortAudioError", None)
    errors: tuple[type[BaseException], ...] = (ValueError, OSError)
    if isinstance(port_audio_error, type) and issubclass(port_audio_error, BaseException):
        errors = (*errors, port_audio_error)
    return errors


def _device_info(sd: ModuleType, device: int | str | None, kind: str) -> dict[str, Any]:
    try:
        info = sd.query_devices(device, kind)
    except _device_errors(sd) as exc:
        what = f"the default {kind} device" if device is None else f"{kind} device {device!r}"
        msg = f"Cannot use {what}: {exc}. {_DEVICE_HINT}"
        raise AudioDeviceError(msg) from exc
    return dict(info)


class MicrophoneInput:
    """Stream the microphone to the model.

    Audio is captured at the device's default rate (or ``sample_rate``) in blocks
    of ``block_ms``, mixed to mono and converted to a rate the model accepts
    (``capabilities.input_sample_rates[0]`` unless the capture rate is accepted),
    with ``soxr`` (the ``resample`` extra) when the rates differ. The PortAudio
    callback hands each block to the event loop through a bounded queue of
    ``max_queued_blocks``; if the consumer falls behind, the **oldest** blocks
    are dropped, counted in :attr:`dropped_blocks` and logged. The input never
    ends by itself; :meth:`aclose` stops it and closes the device.

    ``sounddevice`` is imported and the device looked up when the channel is
    created, so a missing extra or device fails before any connection is made.

    Args:
        device: PortAudio device index or name substring; None for the default input.
        sample_rate: Capture rate in Hz; None for the device's default rate.
        block_ms: Duration of each captured block (and audio event), in milliseconds.
        channels: Channels to capture (mixed down to mono).
        max_queued_blocks: Blocks held for a slow consumer before the oldest are dropped.

    Raises:
        MissingDependencyError: sounddevice (or PortAudio) is not installed; the
            message names the extra.
        AudioDeviceError: There is no such input device.
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int | None = None,
        block_ms: float = 20,
        *,
        channels: int = 1,
        max_queued_blocks: int = 100,
    ) -> None:
        block_ms = check_number(block_ms, where="block_ms", above=0, maximum=1000, unit="ms")
        channels = check_number(channels, where="channels", minimum=1, integer=True)
        max_queued_blocks = check_number(
            max_queued_blocks, where="max_queued_blocks", minimum=1, integer=True
        )
        if sample_rate is not None:
            sample_rate = check_sample_rate(sample_rate, where="MicrophoneInput sample_rate")
        self._sd = _import_sounddevice("MicrophoneInput")
        info = _device_info(self._sd, device, "input")
        self.device = device
        #: Capture rate in Hz.
        self.sample_rate: int = int(sample_rate or info["default_samplerate"])
        self.block_ms = block_ms
        self.channels = channels
        self.max_queued_blocks = max_queued_blocks
        #: Blocks dropped because the consumer fell behind.
        self.dropped_blocks = 0
        #: Callbacks in which PortAudio reported an input overflow or another status flag.
        self.status_errors = 0
        self._blocks: collections.deque[bytes] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._stream: Any = None
        self._closed = False

    def _is_closed(self) -> bool:
        return self._closed  # a call, so type checkers do not assume it is unchanged by awaits

    def _on_block(self, data: bytes, status: bool) -> None:
        """Runs on the event loop: queue one block, dropping the oldest when full."""
        if status:
            self.status_errors += 1
        if self._closed:
            return
        if len(self._blocks) >= self.max_queued_blocks:
            self._blocks.popleft()
            self.dropped_blocks += 1
            if self.dropped_blocks % _DROP_LOG_EVERY == 1:
                logger.warning(
                    "Microphone input is not consumed fast enough: dropped %d block(s) "
                    "of %s ms so far (oldest first).",
                    self.dropped_blocks,
                    self.block_ms,
                )
        self._blocks.append(data)
        if self._wake is not None:
            self._wake.set()

    def _open(self, loop: asyncio.AbstractEventLoop) -> Any:
        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            del frames, time_info
            # RuntimeError: the loop closed while the device was still running.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_block, bytes(indata), bool(status))

        sd = self._sd
        try:
            stream = sd.RawInputStream(
                samplerate=self.sample_rate,
                blocksize=max(1, int(self.sample_rate * self.block_ms / 1000)),
                device=self.device,
                channels=self.channels,
                dtype="int16",
                callback=callback,
            )
        except _device_errors(sd) as exc:
            msg = (
                f"Could not open the microphone (device={self.device!r}, "
                f"{self.sample_rate} Hz, {self.channels} channel(s)): {exc}. {_DEVICE_HINT}"
            )
            raise AudioDeviceError(msg) from exc
        try:
            stream.start()
        except BaseException as exc:
            stream.close()
            if isinstance(exc, _device_errors(sd)):
                msg = f"Could not start the microphone (device={self.device!r}): {exc}."
                raise AudioDeviceError(msg) from exc
            raise
        return stream

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.stop()
        except Exception as exc:
            logger.warning("Stopping the microphone failed: %r", exc)
        finally:
            try:
                stream.close()
            except Exception as exc:
                logger.warning("Closing the microphone failed: %r", exc)

    async def events(self, capabilities: ModelCapabilities) -> AsyncIterator[str | BidiInputEvent]:
        """Open the device and yield mono ``BidiAudioInputEvent`` blocks until :meth:`aclose`.

        Args:
            capabilities: The model's; ``input_sample_rates`` picks the output rate.

        Raises:
            UnsupportedInputError: The model takes no audio input.
            MissingDependencyError: Resampling is needed and ``soxr`` is not installed.
            AudioDeviceError: The device could not be opened.
        """
        if self._closed:
            return
        rate = choose_input_rate(capabilities, self.sample_rate, what="MicrophoneInput")
        resampler = Resampler(self.sample_rate, rate, channels=self.channels)
        loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        self._blocks.clear()
        self._stream = self._open(loop)
        try:
            while True:
                while not self._blocks:
                    if self._is_closed():
                        return
                    wake.clear()
                    await wake.wait()
                if self._is_closed():
                    return
                audio = resampler.process(self._blocks.popleft())
                if audio:
                    yield BidiAudioInputEvent(audio=audio, sample_rate=rate, channels=1)
        finally:
            self._close_stream()
            self._blocks.clear()

    async def aclose(self) -> None:
        """Stop capturing and close the device; idempotent."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        self._close_stream()

    def __repr__(self) -> str:
        return (
            f"<MicrophoneInput device={self.device!r} {self.sample_rate} Hz "
            f"x{self.channels} block={self.block_ms} ms dropped={self.dropped_blocks}>"
        )


class SpeakerOutput:
    """Play the model's audio on a speaker, with barge-in and playback tracking.

    :meth:`handle` appends audio to a bounded jitter buffer and returns at once;
    a PortAudio output callback pulls ``block_ms`` blocks from it (silence when it
    is empty). Playback starts, and resumes after running dry, once
    ``prebuffer_ms`` is buffered or the response has ended, which absorbs network
    jitter. A :class:`~bidi_core.io.PlaybackTracker` records which response each
    played byte belonged to, so :meth:`played_ms` is what was handed to the device
    (its output latency, typically tens of milliseconds, is not subtracted).
    :meth:`clear_audio`, and a ``BidiInterruptionEvent`` passed to :meth:`handle`,
    drop everything unplayed at once.

    The device stream opens on the first audio event, at ``sample_rate`` or else
    that event's rate (falling back to the device's default rate if the device
    refuses it); audio at another rate is resampled with ``soxr`` (the
    ``resample`` extra). If more than ``max_buffer_ms`` would be buffered, the
    oldest unplayed audio is dropped, counted in :attr:`dropped_ms` and logged.
    :meth:`aclose` lets the buffered audio finish playing (``drain_on_close``,
    bounded by its duration plus one second) and closes the device.

    Args:
        device: PortAudio device index or name substring; None for the default output.
        sample_rate: Playback rate in Hz; None for the first audio event's rate.
        block_ms: Duration of each device block, in milliseconds.
        prebuffer_ms: Audio buffered before playback starts or resumes.
        max_buffer_ms: Most audio buffered before the oldest is dropped.
        drain_on_close: Let buffered audio play out in :meth:`aclose`.

    Raises:
        MissingDependencyError: sounddevice (or PortAudio) is not installed; the
            message names the extra.
        AudioDeviceError: There is no such output device.
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int | None = None,
        block_ms: float = 20,
        prebuffer_ms: float = 60,
        max_buffer_ms: float = 120_000,
        drain_on_close: bool = True,
    ) -> None:
        block_ms = check_number(block_ms, where="block_ms", above=0, maximum=1000, unit="ms")
        prebuffer_ms = check_number(prebuffer_ms, where="prebuffer_ms", minimum=0, unit="ms")
        max_buffer_ms = check_number(max_buffer_ms, where="max_buffer_ms", above=0, unit="ms")
        if sample_rate is not None:
            sample_rate = check_sample_rate(sample_rate, where="SpeakerOutput sample_rate")
        self._sd = _import_sounddevice("SpeakerOutput")
        self._info = _device_info(self._sd, device, "output")
        self.device = device
        #: Playback rate in Hz (set when the stream opens, unless given).
        self.sample_rate: int | None = sample_rate
        #: Channels of the playback stream (set when it opens).
        self.channels: int | None = None
        self.block_ms = block_ms
        self.prebuffer_ms = prebuffer_ms
        self.max_buffer_ms = max_buffer_ms
        self.drain_on_close = drain_on_close
        #: Audio dropped because more than ``max_buffer_ms`` was buffered.
        self.dropped_ms = 0.0
        #: Audio dropped by :meth:`clear_audio` (barge-in).
        self.cleared_ms = 0.0
        #: Times playback ran dry in the middle of a response.
        self.underruns = 0
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._tracker = PlaybackTracker()
        self._prebuffering = True
        self._response_ended = False
        self._last_response: str | None = None
        self._resamplers: dict[tuple[int, int], Resampler] = {}
        self._stream: Any = None
        self._closed = False

    # ------------------------------------------------------------ device side

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: fill *outdata* from the buffer, silence for the rest."""
        del frames, time_info, status
        size = len(outdata)
        with self._lock:
            available = len(self._buffer)
            if (
                self._prebuffering
                and available < self._prebuffer_bytes()
                and not (self._response_ended and available)
            ):
                take = 0
            else:
                self._prebuffering = False
                take = min(size, available)
            data = bytes(self._buffer[:take])
            del self._buffer[:take]
            if take:
                self._tracker.played(take)
            if take < size and not self._prebuffering:
                if not self._response_ended:
                    self.underruns += 1
                self._prebuffering = True
        outdata[:take] = data
        outdata[take:] = bytes(size - take)

    def _frame_bytes(self) -> int:
        return 2 * (self.channels or 1)

    def _prebuffer_bytes(self) -> int:
        rate = self.sample_rate or 1
        return self._frame_bytes() * int(rate * self.prebuffer_ms / 1000)

    def _open(self, event: BidiAudioStreamEvent) -> None:
        sd = self._sd
        rates = [self.sample_rate] if self.sample_rate else [event.sample_rate]
        default_rate = int(self._info.get("default_samplerate") or 0)
        if not self.sample_rate and default_rate and default_rate not in rates:
            rates.append(default_rate)
        last_error: BaseException | None = None
        for rate in rates:
            try:
                stream = sd.RawOutputStream(
                    samplerate=rate,
                    blocksize=max(1, int(rate * self.block_ms / 1000)),
                    device=self.device,
                    channels=event.channels,
                    dtype="int16",
                    callback=self._callback,
                )
            except _device_errors(sd) as exc:
                last_error = exc
                continue
            self.sample_rate = rate
            self.channels = event.channels
            try:
                stream.start()
            except BaseException as exc:
                stream.close()
                if isinstance(exc, _device_errors(sd)):
                    msg = f"Could not start the speaker (device={self.device!r}): {exc}."
                    raise AudioDeviceError(msg) from exc
                raise
            self._stream = stream
            return
        tried = " or ".join(f"{r} Hz" for r in rates)
        msg = (
            f"Could not open the speaker (device={self.device!r}) at {tried} with "
            f"{event.channels} channel(s): {last_error}. {_DEVICE_HINT}"
        )
        raise AudioDeviceError(msg) from last_error

    # -------------------------------------------------------------- loop side

    def _convert(self, event: BidiAudioStreamEvent) -> bytes:
        rate, channels = self.sample_rate, self.channels
        assert rate is not None
        assert channels is not None
        if event.sample_rate == rate:
            return to_channels(event.audio, event.channels, channels)
        key = (event.sample_rate, event.channels)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = Resampler(event.sample_rate, rate, channels=event.channels)
            self._resamplers[key] = resampler
        return to_channels(resampler.process(event.audio), 1, channels)

    def _enqueue(self, pcm: bytes, response_id: str | None) -> None:
        if not pcm:
            return
        rate, channels = self.sample_rate, self.channels
        assert rate is not None
        assert channels is not None
        chunk = BidiAudioStreamEvent(
            audio=pcm, sample_rate=rate, channels=channels, response_id=response_id
        )
        dropped = 0.0
        with self._lock:
            if response_id != self._last_response:
                self._response_ended = False
            self._buffer += pcm
            self._tracker.received(chunk)
            limit = self._frame_bytes() * int(rate * self.max_buffer_ms / 1000)
            excess = len(self._buffer) - limit
            if excess > 0:
                excess += -excess % self._frame_bytes()
                del self._buffer[:excess]
                dropped = self._tracker.discard(excess)
                self.dropped_ms += dropped
        self._last_response = response_id
        if dropped:
            logger.warning(
                "Speaker buffer over %s ms: dropped the oldest %.0f ms of audio.",
                self.max_buffer_ms,
                dropped,
            )

    def _flush_resamplers(self) -> None:
        for resampler in self._resamplers.values():
            tail = resampler.flush()
            if tail and self.channels:
                self._enqueue(to_channels(tail, 1, self.channels), self._last_response)

    async def handle(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Queue audio for playback (returns at once); clear on interruption; ignore the rest.

        Raises:
            AudioDeviceError: The device could not be opened (on the first audio event).
            MissingDependencyError: Audio must be resampled and ``soxr`` is not installed.
        """
        if self._closed:
            return
        if isinstance(event, BidiAudioStreamEvent):
            if not event.audio:
                return
            if self._stream is None:
                self._open(event)
            self._enqueue(self._convert(event), event.response_id)
        elif isinstance(event, BidiInterruptionEvent):
            self.clear_audio()
        elif isinstance(event, BidiResponseCompleteEvent):
            self._flush_resamplers()
            with self._lock:
                self._response_ended = True
        elif isinstance(event, BidiResponseStartEvent):
            with self._lock:
                self._response_ended = False

    def clear_audio(self) -> None:
        """Drop every unplayed byte at once (barge-in)."""
        with self._lock:
            self.cleared_ms += self._tracker.clear()
            self._buffer.clear()
            self._prebuffering = True
        for resampler in self._resamplers.values():
            resampler.reset()

    def played_ms(self, response_id: str) -> float | None:
        """Milliseconds of *response_id*'s audio handed to the device so far (0.0 if none)."""
        with self._lock:
            return self._tracker.played_ms(response_id)

    @property
    def queued_ms(self) -> float:
        """Milliseconds of audio buffered and not played yet."""
        with self._lock:
            return self._tracker.queued_ms

    async def aclose(self) -> None:
        """Let buffered audio play out (if ``drain_on_close``), close the device; idempotent."""
        if self._closed:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            if self.drain_on_close:
                self._flush_resamplers()
                with self._lock:
                    self._response_ended = True
                    left = self._tracker.queued_ms
                loop = asyncio.get_running_loop()
                deadline = loop.time() + left / 1000 + 1.0
                # Polled: the device thread must not touch the loop's objects.
                while self.queued_ms > 0 and loop.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(min(self.block_ms / 1000, 0.05))
            stream.stop()
        except Exception as exc:
            logger.warning("Stopping the speaker failed: %r", exc)
        finally:
            with self._lock:
                self._tracker.clear()
                self._buffer.clear()
            try:
                stream.close()
            except Exception as exc:
                logger.warning("Closing the speaker failed: %r", exc)

    def __repr__(self) -> str:
        return (
            f"<SpeakerOutput device={self.device!r} rate={self.sample_rate} "
            f"queued={self.queued_ms:.0f} ms dropped={self.dropped_ms:.0f} ms>"
        )
