"""WAV files in (paced like a live speaker, or as fast as possible) and out."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from .._config import check_number, check_sample_rate
from .._protocol import ModelCapabilities
from ..audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, duration_ms, to_channels
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInputEvent,
    BidiOutputEvent,
    ToolResultEvent,
)
from ._errors import AudioFormatError
from ._playback import PlaybackTracker
from ._resample import Resampler, choose_input_rate

__all__ = ["WavFileInput", "WavFileOutput"]

logger = logging.getLogger("bidi_core.io")

_CONVERT_HINT = "convert it to 16-bit PCM first, e.g. `sox in.wav -b 16 -e signed out.wav`"
_FORMAT_NAMES = {
    3: "32-bit float",
    6: "A-law",
    7: "mu-law",
    0x11: "IMA ADPCM",
    0x55: "MP3",
    0xFFFE: "extensible (non-PCM)",
}
#: Sample rate of an output file that never received audio.
_EMPTY_FILE_RATE = 24000


def _describe_wave_error(exc: BaseException) -> str:
    match = re.search(r"unknown format: (\d+)", str(exc))
    if match:
        tag = int(match.group(1))
        name = _FORMAT_NAMES.get(tag, f"format tag {tag}")
        return f"holds {name} audio, not 16-bit PCM"
    if "extended format" in str(exc):
        return "holds a non-PCM extensible format, not 16-bit PCM"
    return f"is not a readable WAV file ({exc or type(exc).__name__})"


def _open_reader(path: Path) -> wave.Wave_read:
    """Open *path* as a PCM16 WAV; raise AudioFormatError saying what is wrong otherwise."""
    try:
        reader = wave.open(os.fspath(path), "rb")  # noqa: SIM115 - the caller closes it
    except (wave.Error, EOFError) as exc:
        msg = f"WAV file {str(path)!r} {_describe_wave_error(exc)}; {_CONVERT_HINT}."
        raise AudioFormatError(msg) from exc
    width = reader.getsampwidth()
    channels = reader.getnchannels()
    rate = reader.getframerate()
    problem = None
    if width != 2:
        problem = f"holds {8 * width}-bit PCM audio, not 16-bit"
    elif channels < 1:
        problem = f"declares {channels} channels"
    elif not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        problem = (
            f"declares a sample rate of {rate} Hz (bidi takes {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz)"
        )
    if problem is not None:
        reader.close()
        msg = f"WAV file {str(path)!r} {problem}; {_CONVERT_HINT}."
        raise AudioFormatError(msg)
    return reader


class WavFileInput:
    """Stream a PCM16 WAV file to the model as if someone were saying it.

    The file may have any sample rate and channel count: it is mixed to mono and,
    unless the model accepts its rate, resampled (with ``soxr``, the ``resample``
    extra) to ``capabilities.input_sample_rates[0]``. Chunks of ``chunk_ms`` are
    yielded in real time (``realtime=True``: chunk *n* leaves at *n* x ``chunk_ms``
    after the first, on an absolute clock, so pacing does not drift) or as fast as
    the consumer takes them. ``tail_silence_ms`` of silence follow, so the model's
    end-of-speech detection fires after the last word.

    The header is checked when the channel is created, so a missing or unreadable
    file fails before any connection is made; the file is opened again by
    :meth:`events` and closed when it ends or on :meth:`aclose`.

    Args:
        path: The WAV file.
        realtime: Pace chunks in real time; False sends them as fast as possible.
        chunk_ms: Duration of each audio event, in milliseconds.
        tail_silence_ms: Silence appended after the file, in milliseconds.

    Raises:
        FileNotFoundError: The file does not exist (any ``OSError`` opening it).
        AudioFormatError: The file is not a 16-bit PCM WAV; the message says what it is.
        ValueError: ``chunk_ms`` is not a finite number > 0 (at most 60,000) or
            ``tail_silence_ms`` not one >= 0 (at most 600,000).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        realtime: bool = True,
        chunk_ms: float = 20,
        tail_silence_ms: float = 1000,
    ) -> None:
        chunk_ms = check_number(chunk_ms, where="chunk_ms", above=0, maximum=60_000, unit="ms")
        tail_silence_ms = check_number(
            tail_silence_ms, where="tail_silence_ms", minimum=0, maximum=600_000, unit="ms"
        )
        self.path = Path(path)
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self.tail_silence_ms = tail_silence_ms
        with _open_reader(self.path) as reader:
            #: The file's sample rate, in Hz.
            self.sample_rate: int = reader.getframerate()
            #: The file's channel count.
            self.channels: int = reader.getnchannels()
            #: The file's length in frames.
            self.frames: int = reader.getnframes()
        self._reader: wave.Wave_read | None = None
        self._closed = False
        self._wake: asyncio.Event | None = None

    @property
    def duration_ms(self) -> float:
        """Length of the file's audio (without the tail silence), in milliseconds."""
        return self.frames * 1000.0 / self.sample_rate

    def _is_closed(self) -> bool:
        return self._closed  # a call, so type checkers do not assume it is unchanged by awaits

    async def _pace(self, deadline: float | None) -> None:
        if deadline is None:
            await asyncio.sleep(0)  # let the agent's other tasks run between chunks
            return
        wake = self._wake
        if wake is None or asyncio.get_running_loop().time() >= deadline:
            return
        try:
            async with asyncio.timeout_at(deadline):
                await wake.wait()  # set by aclose(): stop waiting at once
        except TimeoutError:
            pass

    async def events(self, capabilities: ModelCapabilities) -> AsyncIterator[str | BidiInputEvent]:
        """Yield the file as mono ``BidiAudioInputEvent`` chunks at a rate the model takes.

        Args:
            capabilities: The model's; ``input_sample_rates`` picks the output rate.

        Raises:
            UnsupportedInputError: The model takes no audio input.
            MissingDependencyError: Resampling is needed and ``soxr`` is not installed.
            AudioFormatError: The file became unreadable.
        """
        if self._closed:
            return
        rate = choose_input_rate(capabilities, self.sample_rate, what="WavFileInput")
        resampler = Resampler(self.sample_rate, rate, channels=self.channels)
        chunk_bytes = max(2, 2 * int(rate * self.chunk_ms / 1000))
        read_frames = max(1, int(self.sample_rate * self.chunk_ms / 1000))
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent_bytes = 0

        def deadline() -> float | None:
            return start + sent_bytes / (2 * rate) if self.realtime else None

        def event(audio: bytes) -> BidiAudioInputEvent:
            return BidiAudioInputEvent(audio=audio, sample_rate=rate, channels=1)

        reader = _open_reader(self.path)
        self._reader = reader
        self._wake = asyncio.Event()
        try:
            pending = bytearray()
            done = False
            while not done:
                if self._is_closed():
                    return
                try:
                    data = reader.readframes(read_frames)
                except (wave.Error, EOFError, ValueError) as exc:
                    if self._is_closed():
                        return
                    msg = f"WAV file {str(self.path)!r} could not be read to the end: {exc}."
                    raise AudioFormatError(msg) from exc
                if data:
                    pending += resampler.process(data)
                else:
                    pending += resampler.flush()
                    done = True
                while len(pending) >= chunk_bytes or (done and pending):
                    chunk = bytes(pending[:chunk_bytes])
                    del pending[:chunk_bytes]
                    await self._pace(deadline())
                    if self._is_closed():
                        return
                    yield event(chunk)
                    sent_bytes += len(chunk)
            reader.close()
            tail = 2 * int(rate * self.tail_silence_ms / 1000)
            while tail > 0 and not self._is_closed():
                n = min(chunk_bytes, tail)
                await self._pace(deadline())
                if self._is_closed():
                    return
                yield event(bytes(n))
                sent_bytes += n
                tail -= n
        finally:
            reader.close()
            if self._reader is reader:
                self._reader = None

    async def aclose(self) -> None:
        """Stop streaming and close the file; idempotent."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        reader = self._reader
        if reader is not None:
            self._reader = None
            reader.close()

    def __repr__(self) -> str:
        return (
            f"<WavFileInput {str(self.path)!r} {self.sample_rate} Hz x{self.channels} "
            f"{self.duration_ms:.0f} ms realtime={self.realtime}>"
        )


class WavFileOutput:
    """Write the model's spoken output to a PCM16 WAV file.

    The file is created on the first audio event, at ``sample_rate`` or else that
    event's rate, with that event's channel count; later audio at another rate or
    channel count is converted (resampling needs the ``resample`` extra).
    Responses are written back to back, without the pauses between them. A file
    "plays" instantly, so :meth:`played_ms` reports what was written per response
    and :meth:`clear_audio` has nothing to drop. If no audio ever arrives,
    :meth:`aclose` still writes a valid, empty WAV file (at ``sample_rate``, else
    24 kHz, mono). Other events are ignored.

    Args:
        path: The file to (over)write.
        sample_rate: Rate of the file in Hz; None takes the first audio event's.
    """

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int | None = None) -> None:
        if sample_rate is not None:
            sample_rate = check_sample_rate(sample_rate, where="WavFileOutput sample_rate")
        self.path = Path(path)
        self.sample_rate = sample_rate
        #: Channel count of the file, once it is created.
        self.channels: int | None = None
        #: Frames written so far.
        self.frames_written = 0
        self._writer: wave.Wave_write | None = None
        self._tracker = PlaybackTracker()
        self._resamplers: dict[tuple[int, int], Resampler] = {}
        self._closed = False
        self._warned_closed = False

    def _open(self, rate: int, channels: int) -> wave.Wave_write:
        writer = wave.open(os.fspath(self.path), "wb")  # noqa: SIM115 - closed in aclose()
        try:
            writer.setnchannels(channels)
            writer.setsampwidth(2)
            writer.setframerate(rate)
        except BaseException:
            writer.close()
            raise
        self.sample_rate = rate
        self.channels = channels
        self._writer = writer
        return writer

    def _write(self, writer: wave.Wave_write, pcm: bytes) -> None:
        if pcm:
            writer.writeframesraw(pcm)
            self.frames_written += len(pcm) // (2 * (self.channels or 1))

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

    async def handle(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Append an audio event's samples to the file; ignore every other event."""
        if not isinstance(event, BidiAudioStreamEvent) or not event.audio:
            return
        if self._closed:
            if not self._warned_closed:
                self._warned_closed = True
                logger.warning(
                    "WavFileOutput(%r) is closed; audio after aclose() is not written.",
                    str(self.path),
                )
            return
        writer = self._writer
        if writer is None:
            writer = self._open(self.sample_rate or event.sample_rate, event.channels)
        self._write(writer, self._convert(event))
        self._tracker.received(event)
        self._tracker.played(len(event.audio))

    def clear_audio(self) -> None:
        """Do nothing: audio is written as it arrives, so none is queued."""

    def played_ms(self, response_id: str) -> float | None:
        """Milliseconds of *response_id*'s audio written to the file."""
        return self._tracker.played_ms(response_id)

    def written_ms(self) -> float:
        """Milliseconds of audio in the file so far."""
        return duration_ms(self.frames_written * 2, self.sample_rate or 1)

    async def aclose(self) -> None:
        """Flush resampler tails, finish the WAV header and close the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is None:
            writer = self._open(self.sample_rate or _EMPTY_FILE_RATE, 1)
        try:
            for resampler in self._resamplers.values():
                self._write(writer, to_channels(resampler.flush(), 1, self.channels or 1))
        finally:
            self._writer = None
            writer.close()

    def __repr__(self) -> str:
        return (
            f"<WavFileOutput {str(self.path)!r} rate={self.sample_rate} "
            f"channels={self.channels} frames={self.frames_written}>"
        )
