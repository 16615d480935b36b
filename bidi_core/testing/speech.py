"""A toy speech codec for deterministic tests: text <-> PCM16 tones.

Every character becomes a 30 ms tone (its own frequency) followed by 10 ms of
silence. :func:`speak` synthesizes it at any rate >= 8 kHz and :func:`transcribe`
reads it back, also after resampling, so "spoken" questions in tests and demos are
transcribed exactly by the :class:`~bidi_core.testing.ScriptedAssistant` and every
fake provider server, and the assistant's spoken answers can be checked by ear-less
tests.
"""

from __future__ import annotations

import math
import sys
from array import array

__all__ = ["ALPHABET", "normalize", "speak", "transcribe"]

#: Characters the codec can say; others are spoken as ``?``.
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789.,?!'-:;\"{}_"
_TONE_MS = 30
_GAP_MS = 10
_BASE_HZ = 500.0
_STEP_HZ = 50.0
_AMPLITUDE = 9000
_LITTLE = sys.byteorder == "little"


def _freq(char: str) -> float:
    index = ALPHABET.find(char.lower())
    if index < 0:
        index = ALPHABET.index("?")
    return _BASE_HZ + _STEP_HZ * index


def normalize(text: str) -> str:
    """Return *text* as :func:`transcribe` reads it back: lower case, unknown characters ``?``."""
    return "".join(c if c in ALPHABET else "?" for c in text.lower())


def speak(text: str, sample_rate: int = 16000) -> bytes:
    """Return PCM16 mono audio "saying" *text* (40 ms per character).

    Args:
        text: What to say.
        sample_rate: Samples per second, at least 8000.
    """
    if sample_rate < 8000:
        msg = f"speak() needs sample_rate >= 8000 (got {sample_rate!r})."
        raise ValueError(msg)
    tone_n = sample_rate * _TONE_MS // 1000
    gap = [0] * (sample_rate * _GAP_MS // 1000)
    out = array("h")
    for char in text:
        step = 2 * math.pi * _freq(char) / sample_rate
        # A short fade keeps the tone edges clean after resampling.
        fade = max(1, tone_n // 10)
        out.extend(
            int(_AMPLITUDE * min(1.0, (i + 1) / fade, (tone_n - i) / fade) * math.sin(step * i))
            for i in range(tone_n)
        )
        out.extend(gap)
    if not _LITTLE:  # pragma: no cover
        out.byteswap()
    return out.tobytes()


def transcribe(pcm: bytes, sample_rate: int) -> str:
    """Return the text :func:`speak` encoded in *pcm* (best effort for other audio).

    Tones are found as runs of non-silent samples separated by gaps; each run's
    frequency is measured from its zero crossings.
    """
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not _LITTLE:  # pragma: no cover
        samples.byteswap()
    threshold = 600
    min_gap = max(1, sample_rate * 4 // 1000)  # 4 ms of quiet ends a tone
    min_tone = sample_rate * 15 // 1000
    chars: list[str] = []
    start = -1
    quiet = 0
    n = len(samples)
    for i in range(n + min_gap):
        loud = i < n and abs(samples[i]) > threshold
        if loud:
            if start < 0:
                start = i
            quiet = 0
            last_loud = i
        elif start >= 0:
            quiet += 1
            if quiet >= min_gap or i >= n:
                if last_loud - start >= min_tone:
                    chars.append(_decode_run(samples, start, last_loud + 1, sample_rate))
                start = -1
                quiet = 0
    return "".join(chars)


def _decode_run(samples: array[int], start: int, end: int, sample_rate: int) -> str:
    crossings: list[float] = []
    prev = samples[start]
    for i in range(start + 1, end):
        cur = samples[i]
        if (prev < 0 <= cur) or (prev >= 0 > cur):
            # Linear interpolation of the crossing point.
            denom = cur - prev
            crossings.append(i - 1 + (-prev / denom if denom else 0.0))
        prev = cur
    if len(crossings) < 3:
        return "?"
    span = crossings[-1] - crossings[0]
    freq = (len(crossings) - 1) / 2.0 / (span / sample_rate)
    index = round((freq - _BASE_HZ) / _STEP_HZ)
    if 0 <= index < len(ALPHABET):
        return ALPHABET[index]
    return "?"
