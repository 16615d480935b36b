"""Recording conversations: a stereo WAV and a JSONL event log per session.

``BidiAgent(record_to="recordings/")`` (or ``bidi chat --record DIR``, ``bidi serve
--record DIR``) writes, for every conversation, ``<time>-<session>.wav`` and
``<time>-<session>.jsonl``:

* **WAV**: 16-bit stereo at the model's output rate. The **left** channel is the
  user (audio sent to the model), the **right** channel the assistant, both on one
  clock that starts with the conversation. User audio is placed when it was sent;
  assistant audio is laid out as a speaker would play it (from its arrival, one chunk
  after the other). At a barge-in the assistant audio not yet played by then is cut,
  so the right channel stops where the user interrupted.
* **JSONL**: one JSON object per line: a ``recording_start`` header, then every input
  and event with ``t`` (seconds since the start) and ``dir`` (``"in"``/``"out"``).
  Audio is never inline: an audio event carries ``audio: {"channel", "frame",
  "frames"}``, the place of its samples in the WAV (frames at the WAV's rate); an
  interruption carries ``cut_frame``. Images are reduced to their size.

Recording is bounded by ``max_bytes`` (WAV and JSONL together, per session); at the
limit it stops and the agent yields a ``BidiErrorEvent`` (code
``recording_limit``). A failure to write (a full disk, a removed directory) stops the
recording with a ``BidiErrorEvent`` (code ``recording_failed``); the conversation
always goes on.
"""

from __future__ import annotations

import array
import base64
import json
import logging
import os
import sys
import time
import wave
from pathlib import Path
from typing import IO, Any

import attrs

from .agent._observer import AgentObserver, SessionInfo
from .events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    ToolResultEvent,
)

__all__ = ["DEFAULT_MAX_BYTES", "Recorder"]

logger = logging.getLogger("bidi_core.recording")

#: Default size limit of one session's recording (WAV + JSONL).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: A stream that pauses longer than this restarts at the clock instead of after its last chunk.
_GAP_S = 0.1
#: Audio is written once this much of it is final (older than the clock).
_FLUSH_S = 0.25


def _numpy() -> Any:
    """NumPy if something already imported it (sounddevice, soxr), else None.

    Never imported here: a first import takes most of a second, and the recorder runs
    on the event loop.
    """
    return sys.modules.get("numpy")


_POSITIONS: dict[tuple[int, int, int], tuple[list[int], list[int], list[float]]] = {}


def _positions(
    count: int, from_rate: int, to_rate: int
) -> tuple[list[int], list[int], list[float]]:
    """Source indices and weights of a linear resampling (cached: chunk sizes repeat)."""
    key = (count, from_rate, to_rate)
    cached = _POSITIONS.get(key)
    if cached is None:
        out = max(1, round(count * to_rate / from_rate))
        step = (count - 1) / (out - 1) if out > 1 else 0.0
        lows = [int(i * step) for i in range(out)]
        highs = [min(low + 1, count - 1) for low in lows]
        fracs = [i * step - low for i, low in enumerate(lows)]
        if len(_POSITIONS) > 64:
            _POSITIONS.clear()
        cached = _POSITIONS[key] = (lows, highs, fracs)
    return cached


def _resample(pcm: bytes, from_rate: int, to_rate: int) -> array.array[int]:
    """Linear-interpolation resampling of mono PCM16 (good enough for a recording)."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if from_rate == to_rate or not samples:
        return samples
    numpy = _numpy()
    if numpy is not None:
        count = max(1, round(len(samples) * to_rate / from_rate))
        source = numpy.frombuffer(samples, dtype=numpy.int16)
        where = numpy.linspace(0, len(samples) - 1, count)
        values = numpy.interp(where, numpy.arange(len(samples)), source)
        return array.array("h", values.astype(numpy.int16).tobytes())
    lows, highs, fracs = _positions(len(samples), from_rate, to_rate)
    at = samples.__getitem__
    return array.array(
        "h",
        [
            a + int((b - a) * f)
            for a, b, f in zip(map(at, lows), map(at, highs), fracs, strict=True)
        ],
    )


def _mono(event: BidiAudioInputEvent | BidiAudioStreamEvent) -> bytes:
    if event.channels <= 1:
        return event.audio
    from .audio import to_mono  # noqa: PLC0415

    return to_mono(event.audio, event.channels)


class _Track:
    """One channel's samples from the WAV's written position on, and where it plays next."""

    __slots__ = ("cursor", "samples")

    def __init__(self) -> None:
        self.samples = array.array("h")
        self.cursor = 0  # absolute frame after the last placed chunk


class Recorder(AgentObserver):
    """Writes a stereo WAV and a JSONL log of each conversation into a directory.

    Args:
        directory: Where the files go (created if missing).
        max_bytes: Size limit of one session's WAV + JSONL.
        sample_rate: The WAV's rate (default: the model's output rate).

    Attributes:
        wav_path: The current (or last) session's WAV file.
        jsonl_path: The current (or last) session's JSONL file.
        error: Why recording stopped early, if it did.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        sample_rate: int | None = None,
    ) -> None:
        if max_bytes < 4096:
            msg = f"max_bytes must be at least 4096, got {max_bytes!r}."
            raise ValueError(msg)
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.sample_rate = sample_rate
        self.wav_path: Path | None = None
        self.jsonl_path: Path | None = None
        self.error: str | None = None
        self._wav: wave.Wave_write | None = None
        self._log: IO[str] | None = None
        self._session: SessionInfo | None = None
        self._rate = 24000
        self._written = 0  # frames written to the WAV
        self._bytes = 0
        self._last_flush = 0.0
        self._user = _Track()
        self._assistant = _Track()
        self._active = False

    def __repr__(self) -> str:
        return f"<Recorder {str(self.directory)!r}>"

    # ------------------------------------------------------------ lifecycle

    def on_start(self, session: SessionInfo) -> None:
        """Open this session's files."""
        self._session = session
        self._rate = self.sample_rate or session.output_sample_rate or 24000
        self._written = 0
        self._bytes = 0
        self._user, self._assistant = _Track(), _Track()
        self.error = None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(session.started_at))
        base = self.directory / f"{stamp}-{session.session_id}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.wav_path, self.jsonl_path = base.with_suffix(".wav"), base.with_suffix(".jsonl")
            wav = wave.open(str(self.wav_path), "wb")  # noqa: SIM115 - closed in on_stop
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(self._rate)
            self._wav = wav
            self._log = self.jsonl_path.open("w", encoding="utf-8")
            self._active = True
            self._line(
                {
                    "type": "recording_start",
                    "t": 0.0,
                    "session_id": session.session_id,
                    "model": session.provider,
                    "model_id": session.model_id,
                    "started_at": session.started_at,
                    "wav": self.wav_path.name,
                    "sample_rate": self._rate,
                    "channels": {"left": "user", "right": "assistant"},
                }
            )
        except OSError as exc:
            self._fail(f"cannot create the recording in {str(self.directory)!r}: {exc}")

    def on_stop(self, t: float) -> None:
        """Write what is left and close the files."""
        if self._active:
            end = max(self._user.cursor, self._assistant.cursor, self._frame(t))
            self._flush(end)
            self._line({"type": "recording_end", "t": self._seconds(t), "frames": self._written})
        self._close()

    # ---------------------------------------------------------------- hooks

    def on_input(self, event: BidiInputEvent | ToolResultEvent, t: float) -> None:
        """Record an input; user audio goes to the left channel."""
        if not self._active:
            return
        if isinstance(event, BidiAudioInputEvent):
            where = self._place(self._user, _mono(event), event.sample_rate, t)
            self._line(self._entry(event, t, "in", audio=("left", *where)))
        else:
            self._line(self._entry(event, t, "in"))
        self._maybe_flush(t)

    def on_event(self, event: BidiEvent, t: float) -> None:
        """Record an event; assistant audio goes to the right channel, barge-in cuts it."""
        if not self._active:
            return
        if isinstance(event, BidiAudioStreamEvent):
            where = self._place(self._assistant, _mono(event), event.sample_rate, t)
            self._line(self._entry(event, t, "out", audio=("right", *where)))
        elif isinstance(event, BidiInterruptionEvent):
            cut = self._cut(t)
            self._line({**self._entry(event, t, "out"), "cut_frame": cut})
        else:
            self._line(self._entry(event, t, "out"))
        self._maybe_flush(t)

    # ---------------------------------------------------------------- audio

    def _frame(self, t: float) -> int:
        assert self._session is not None
        return max(0, round((t - self._session.t0) * self._rate))

    def _seconds(self, t: float) -> float:
        assert self._session is not None
        return round(t - self._session.t0, 6)

    def _place(self, track: _Track, pcm: bytes, rate: int, t: float) -> tuple[int, int]:
        """Lay *pcm* on *track*: after its last chunk, or at the clock after a pause."""
        samples = _resample(pcm, rate, self._rate)
        now = self._frame(t)
        start = track.cursor if track.cursor >= now - _GAP_S * self._rate else now
        start = max(start, self._written)
        offset = start - self._written
        end = offset + len(samples)
        if len(track.samples) < end:
            track.samples.extend(array.array("h", bytes(2 * (end - len(track.samples)))))
        track.samples[offset:end] = samples
        track.cursor = start + len(samples)
        return start, len(samples)

    def _cut(self, t: float) -> int:
        """Drop assistant audio that a speaker would not have played by *t*."""
        cut = max(self._frame(t), self._written)
        track = self._assistant
        if track.cursor > cut:
            del track.samples[cut - self._written :]
            track.cursor = cut
        return cut

    def _maybe_flush(self, t: float) -> None:
        if t - self._last_flush >= _FLUSH_S:
            self._last_flush = t
            self._flush(self._frame(t))

    def _flush(self, until: int) -> None:
        """Write the frames before *until* (both channels) to the WAV."""
        count = until - self._written
        if count <= 0 or self._wav is None:
            return
        if self._bytes + 4 * count > self.max_bytes:
            count = max(0, (self.max_bytes - self._bytes) // 4)
            self._write_frames(count)
            self._limit()
            return
        self._write_frames(count)

    def _write_frames(self, count: int) -> None:
        if count <= 0 or self._wav is None:
            return
        stereo = array.array("h", bytes(4 * count))
        for channel, track in enumerate((self._user, self._assistant)):
            part = track.samples[:count]
            if len(part) < count:
                part.extend(array.array("h", bytes(2 * (count - len(part)))))
            stereo[channel::2] = part
            del track.samples[:count]
        try:
            self._wav.writeframes(stereo.tobytes())
        except OSError as exc:
            self._fail(f"writing {str(self.wav_path)!r} failed: {exc}")
            return
        self._written += count
        self._bytes += 4 * count

    # ------------------------------------------------------------------ log

    def _entry(
        self,
        event: BidiEvent,
        t: float,
        direction: str,
        *,
        audio: tuple[str, int, int] | None = None,
    ) -> dict[str, Any]:
        if isinstance(event, BidiAudioInputEvent | BidiAudioStreamEvent):
            data = attrs.evolve(event, audio=b"").to_dict()  # never the payload
            if audio is not None:
                channel, frame, frames = audio
                data["audio"] = {"channel": channel, "frame": frame, "frames": frames}
        elif isinstance(event, BidiImageInputEvent):
            data = attrs.evolve(event, image=b"").to_dict()
            data["image"] = {"bytes": len(event.raw_bytes())}
        else:
            data = event.to_dict()
        return {"t": self._seconds(t), "dir": direction, **data}

    def _line(self, data: dict[str, Any]) -> None:
        if self._log is None:
            return
        text = json.dumps(data, ensure_ascii=False, default=_json_default) + "\n"
        size = len(text.encode("utf-8"))
        if self._bytes + size > self.max_bytes:
            self._limit()
            return
        try:
            self._log.write(text)
        except OSError as exc:
            self._fail(f"writing {str(self.jsonl_path)!r} failed: {exc}")
            return
        self._bytes += size

    # --------------------------------------------------------------- ending

    def _limit(self) -> None:
        if not self._active:
            return
        self._active = False
        self.error = f"the recording reached its size limit ({self.max_bytes} bytes)"
        logger.warning("Recording %s stopped: %s", self.wav_path, self.error)
        self._report("recording_limit", f"Recording stopped: {self.error}.")
        self._close()

    def _fail(self, reason: str) -> None:
        self._active = False
        self.error = reason
        logger.warning("Recording stopped: %s", reason)
        self._report("recording_failed", f"Recording stopped: {reason}. The talk goes on.")
        self._close()

    def _report(self, code: str, message: str) -> None:
        if self._session is not None:
            self._session.report(
                BidiErrorEvent(
                    message=message,
                    code=code,
                    recoverable=True,
                    details={"path": str(self.wav_path or self.directory)},
                )
            )

    def _close(self) -> None:
        wav, self._wav = self._wav, None
        log, self._log = self._log, None
        self._active = False
        for handle in (wav, log):
            if handle is None:
                continue
            try:
                handle.close()
            except OSError as exc:
                logger.warning("Closing the recording failed: %r", exc)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return repr(value)
