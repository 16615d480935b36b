"""Constants and PCM helpers shared by the benchmark servers, workers and drivers.

The provider frames themselves are not built here: :mod:`_record` records them from
each plugin's fake server, the one definition of what the service sends.

Audio payloads start with ``struct.pack("<dQ", sent_at, seq)`` in real-time mode, so a
client can measure the lateness of each audio event from its bytes alone.
"""

from __future__ import annotations

import struct

#: The transcript text that ends a burst (the last recorded answer is cut after it).
SENTINEL = "bench-end"
CHUNK_MS = 20
OUTPUT_RATE = 24000
#: Input rates the bidi plugins send at (OpenAI GA is 24 kHz; Gemini and Nova take 16 kHz).
INPUT_RATE = {"openai": 24000, "gemini": 16000, "nova": 16000}
STAMP = struct.Struct("<dQ")


def pcm_chunk(rate: int = OUTPUT_RATE, ms: int = CHUNK_MS, seed: int = 0) -> bytes:
    """Return one chunk of non-silent, incompressible-looking PCM16 mono."""
    samples = rate * ms // 1000
    out = bytearray(2 * samples)
    x = 0x9E3779B1 ^ seed
    for i in range(samples):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        struct.pack_into("<h", out, 2 * i, (x >> 8) % 12000 - 6000)
    return bytes(out)


def stamped(pcm: bytes, sent_at: float, seq: int) -> bytes:
    """Return *pcm* with its first 16 bytes replaced by ``(sent_at, seq)``."""
    return STAMP.pack(sent_at, seq) + pcm[STAMP.size :]


def read_stamp(pcm: bytes) -> tuple[float, int]:
    """Return ``(sent_at, seq)`` of a stamped chunk."""
    sent_at, seq = STAMP.unpack_from(pcm)
    return sent_at, seq
