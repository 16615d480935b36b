"""G.711 mu-law (PCMU) to and from PCM16, without the removed ``audioop`` module.

Telephony (Twilio Media Streams) carries 8 kHz mono mu-law: one byte per sample, a
sign bit, a 3-bit segment (exponent) and a 4-bit step (mantissa), all bits inverted
on the wire. These functions implement the ITU-T G.711 companding law as its
reference software (ITU-T G.191, ``ulaw_compress``/``ulaw_expand``) does: 14-bit
magnitudes, the one's complement for negative samples, a bias of 33 and a clip at
8191. Lookup tables are built once at import, so a 20 ms frame is one table pass.
"""

from __future__ import annotations

import sys
from array import array

__all__ = ["decode", "encode", "linear_of", "ulaw_of"]

_BIAS = 0x84
_CLIP = 32635
_LITTLE = sys.byteorder == "little"


def ulaw_of(sample: int) -> int:
    """Return the mu-law byte of one PCM16 sample (-32768..32767)."""
    sign = 0x80 if sample < 0 else 0
    # G.191 takes the one's complement of negative samples (-1 sits with 0).
    magnitude = min(~sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def linear_of(code: int) -> int:
    """Return the PCM16 sample a mu-law byte decodes to."""
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if code & 0x80 else magnitude


# Every 16-bit sample (as an unsigned index) -> its mu-law byte, and back.
_ENCODE = bytes(ulaw_of(i - 65536 if i >= 32768 else i) for i in range(65536))
_DECODE = array("h", (linear_of(c) for c in range(256)))


def encode(pcm: bytes) -> bytes:
    """Encode PCM16 little-endian mono audio as mu-law (one byte per sample).

    A trailing odd byte (half a sample) is ignored.
    """
    samples = array("H")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        samples.byteswap()
    table = _ENCODE
    return bytes([table[s] for s in samples])


def decode(ulaw: bytes) -> bytes:
    """Decode mu-law bytes to PCM16 little-endian mono audio."""
    table = _DECODE
    samples = array("h", [table[c] for c in ulaw])
    if not _LITTLE:  # pragma: no cover
        samples.byteswap()
    return samples.tobytes()
