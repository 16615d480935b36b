"""A small codec for the AWS event-stream binary framing (``application/vnd.amazon.eventstream``).

Bedrock's bidirectional stream carries every Nova event in event-stream messages::

    prelude:  total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers:  name length (u8) | name | value type (u8) | value ...
    payload
    message CRC32 (u32)

The SDK does this itself on the client side; the fake server
(:mod:`bidi_nova_sonic.testing`) and the tests use this module to read what the
client signed and to write what the service would answer. Pure functions, no I/O.
"""

from __future__ import annotations

import binascii
import datetime
import struct
import uuid
from typing import Any

import attrs

__all__ = [
    "EventStreamError",
    "Message",
    "MessageDecoder",
    "decode_headers",
    "decode_message",
    "encode_headers",
    "encode_message",
    "header_bytes",
]

_PRELUDE = struct.Struct(">II")
_U32 = struct.Struct(">I")
_MAX_MESSAGE = 24 * 1024 * 1024

# Header value types of the event-stream specification.
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)


class EventStreamError(ValueError):
    """The bytes are not a valid event-stream message."""


@attrs.frozen(kw_only=True)
class Message:
    """One decoded event-stream message.

    Attributes:
        headers: Header name -> value (``str``, ``bytes``, ``int``, ``bool``,
            ``datetime`` or ``uuid.UUID``).
        payload: The raw payload.
        raw_headers: The encoded header block exactly as received (signatures cover it).
    """

    headers: dict[str, Any]
    payload: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    raw_headers: bytes = attrs.field(default=b"", repr=False)


def _crc(data: bytes, value: int = 0) -> int:
    return binascii.crc32(data, value) & 0xFFFFFFFF


def encode_headers(headers: dict[str, Any]) -> bytes:
    """Encode a header block (``str`` -> string, ``bytes`` -> bytes, ``bool``, ``int`` -> int32,
    ``datetime`` -> timestamp, ``uuid.UUID`` -> uuid)."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        out += bytes([len(raw_name)]) + raw_name
        if isinstance(value, bool):
            out.append(_TRUE if value else _FALSE)
        elif isinstance(value, int):
            out.append(_INT)
            out += struct.pack(">i", value)
        elif isinstance(value, bytes):
            out.append(_BYTES)
            out += struct.pack(">H", len(value)) + value
        elif isinstance(value, str):
            raw = value.encode("utf-8")
            out.append(_STRING)
            out += struct.pack(">H", len(raw)) + raw
        elif isinstance(value, datetime.datetime):
            out.append(_TIMESTAMP)
            out += struct.pack(">q", int(value.timestamp() * 1000))
        elif isinstance(value, uuid.UUID):
            out.append(_UUID)
            out += value.bytes
        else:
            msg = f"Cannot encode event-stream header {name!r} of type {type(value).__name__}."
            raise TypeError(msg)
    return bytes(out)


def encode_message(headers: dict[str, Any], payload: bytes = b"") -> bytes:
    """Return one complete event-stream message."""
    raw_headers = encode_headers(headers)
    total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _U32.pack(_crc(prelude))
    body = head + raw_headers + payload
    return body + _U32.pack(_crc(body))


def decode_headers(raw: bytes) -> dict[str, Any]:
    """Decode a header block."""
    return {name: value for name, (value, _) in _decode_header_entries(raw).items()}


def header_bytes(raw: bytes, name: str) -> bytes:
    """Return the encoded bytes of header *name* in the block *raw* (b"" if absent)."""
    entry = _decode_header_entries(raw).get(name)
    return entry[1] if entry is not None else b""


def _decode_header_entries(raw: bytes) -> dict[str, tuple[Any, bytes]]:
    headers: dict[str, tuple[Any, bytes]] = {}
    pos = 0
    try:
        while pos < len(raw):
            start = pos
            name_len = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: Any
            if kind in (_TRUE, _FALSE):
                value = kind == _TRUE
            elif kind == _BYTE:
                value = struct.unpack_from(">b", raw, pos)[0]
                pos += 1
            elif kind == _SHORT:
                value = struct.unpack_from(">h", raw, pos)[0]
                pos += 2
            elif kind == _INT:
                value = struct.unpack_from(">i", raw, pos)[0]
                pos += 4
            elif kind == _LONG:
                value = struct.unpack_from(">q", raw, pos)[0]
                pos += 8
            elif kind in (_BYTES, _STRING):
                (length,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + length]
                value = data.decode("utf-8") if kind == _STRING else bytes(data)
                pos += 2 + length
            elif kind == _TIMESTAMP:
                (millis,) = struct.unpack_from(">q", raw, pos)
                value = datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC)
                pos += 8
            elif kind == _UUID:
                value = uuid.UUID(bytes=bytes(raw[pos : pos + 16]))
                pos += 16
            else:
                msg = f"Unknown event-stream header type {kind} for {name!r}."
                raise EventStreamError(msg)
            headers[name] = (value, bytes(raw[start:pos]))
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        msg = f"Truncated or invalid event-stream header block: {exc}."
        raise EventStreamError(msg) from exc
    return headers


def decode_message(data: bytes) -> Message:
    """Decode exactly one complete message (checking both CRCs)."""
    if len(data) < _PRELUDE.size + 8:
        msg = f"An event-stream message needs at least 16 bytes, got {len(data)}."
        raise EventStreamError(msg)
    total, headers_len = _PRELUDE.unpack_from(data)
    if total != len(data):
        msg = f"Event-stream prelude says {total} bytes, the message has {len(data)}."
        raise EventStreamError(msg)
    (prelude_crc,) = _U32.unpack_from(data, 8)
    if prelude_crc != _crc(data[:8]):
        msg = "Event-stream prelude CRC mismatch."
        raise EventStreamError(msg)
    (message_crc,) = _U32.unpack_from(data, total - 4)
    if message_crc != _crc(data[: total - 4]):
        msg = "Event-stream message CRC mismatch."
        raise EventStreamError(msg)
    raw_headers = data[12 : 12 + headers_len]
    payload = data[12 + headers_len : total - 4]
    return Message(headers=decode_headers(raw_headers), payload=payload, raw_headers=raw_headers)


class MessageDecoder:
    """Splits a byte stream into event-stream messages as bytes arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Add *data*; return every message now complete (raises :class:`EventStreamError`)."""
        self._buffer += data
        out: list[Message] = []
        while len(self._buffer) >= 4:
            (total,) = _U32.unpack_from(self._buffer)
            if total < 16 or total > _MAX_MESSAGE:
                msg = f"Implausible event-stream message length {total}."
                raise EventStreamError(msg)
            if len(self._buffer) < total:
                break
            chunk = bytes(self._buffer[:total])
            del self._buffer[:total]
            out.append(decode_message(chunk))
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole message."""
        return len(self._buffer)
