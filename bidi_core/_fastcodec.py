"""JSON and base64 for the hot paths: fast when ``bidi-core[fast]`` is installed.

Every realtime event crosses JSON and base64 at least once (a 20 ms audio delta is
~1.3 KB of base64 in a ~1.5 KB JSON frame). The stdlib does that in ~10 µs per
frame; ``msgspec`` (JSON decode), ``orjson`` (JSON encode) and ``pybase64`` (SIMD
base64) in ~2 µs (see ``benchmarks/results.md``). Plugins and the core call these
four functions; which library runs is decided once, at import:

* the fast libraries, when all three are installed (``pip install 'bidi-core[fast]'``)
  and ``BIDI_NO_FAST`` is not set to ``1``;
* the stdlib otherwise.

Both give the same results and raise the same exceptions, because the stdlib is the
reference: whatever the fast library refuses, or might spell differently, is handed to
the stdlib, which then answers or raises exactly as it does without the extra.

* :func:`loads`: strict JSON (``NaN`` and ``Infinity`` are refused, as RFC 8259 says),
  from ``str``, ``bytes`` or ``bytearray``; big integers stay exact; ``ValueError``
  (``json.JSONDecodeError``) on invalid JSON, ``UnicodeDecodeError`` on invalid UTF-8.
* :func:`dumps` / :func:`dumpb`: compact strict JSON (``","`` and ``":"``, non-ASCII
  kept as UTF-8), as ``str`` or UTF-8 ``bytes``; ``ValueError`` for NaN and infinities,
  ``TypeError`` for what JSON cannot hold.
* :func:`b64encode`: standard base64 of bytes-like data, as ``str``.
* :func:`b64decode`: standard base64 (``str`` or bytes) to ``bytes``, strictly
  (``base64.b64decode(validate=True)``): ``binascii.Error`` for anything but the
  alphabet and correct padding, ``ValueError`` for non-ASCII ``str``.

Tests run the whole suite both ways (``nox -s tests`` and ``tests_no_fast``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "FAST", "b64decode", "b64encode", "dumpb", "dumps", "loads"]

#: Set to ``1`` to use the stdlib even when the fast libraries are installed.
NO_FAST_ENV = "BIDI_NO_FAST"


def _no_constant(name: str) -> Any:
    msg = f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)"
    raise ValueError(msg)


_std_decoder = json.JSONDecoder(parse_constant=_no_constant)
_std_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_std_encode = _std_encoder.encode


def _std_loads(data: Any) -> Any:
    # json.loads() with a prebuilt strict decoder (no per-call keyword handling).
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            msg = "Unexpected UTF-8 BOM (decode using utf-8-sig)"
            raise json.JSONDecodeError(msg, data, 0)
    elif isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    else:
        msg = f"the JSON object must be str, bytes or bytearray, not {type(data).__name__}"
        raise TypeError(msg)
    return _std_decoder.decode(data)


def _std_dumpb(obj: Any) -> bytes:
    return _std_encode(obj).encode("utf-8")


def _std_b64encode(data: Any) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _std_b64decode(data: str | bytes | bytearray | memoryview) -> bytes:
    return base64.b64decode(data, validate=True)


def _same_in_orjson(obj: Any) -> bool:
    """Whether orjson writes *obj* byte for byte as the stdlib does.

    True for JSON's own types (str keys, finite floats) except floats below 1e-4,
    the only numbers orjson spells differently (``1e-7`` where ``repr`` gives
    ``1e-07``); orjson also writes NaN as ``null`` and UUIDs, enums, dataclasses and
    datetimes natively, where the stdlib raises: all of those go to the stdlib.
    """
    kind = type(obj)
    if kind is str or kind is int or kind is bool or obj is None:
        return True
    if kind is dict:
        for key, value in obj.items():
            if type(key) is not str:
                return False
            kind = type(value)
            if not (kind is str or kind is int or kind is bool or value is None) and not (
                _same_in_orjson(value)
            ):
                return False
        return True
    if kind is list or kind is tuple:
        for value in obj:
            kind = type(value)
            if not (kind is str or kind is int or kind is bool or value is None) and not (
                _same_in_orjson(value)
            ):
                return False
        return True
    if kind is float:
        return math.isfinite(obj) and (obj == 0 or abs(obj) >= 1e-4)
    return False


def _fast_functions() -> dict[str, Any] | None:
    """The fast implementations, or None if a library is missing or turned off."""
    if os.environ.get(NO_FAST_ENV, "") not in ("", "0"):
        return None
    try:
        import msgspec  # noqa: PLC0415 - optional, decided once at import
        import orjson  # noqa: PLC0415
        import pybase64  # noqa: PLC0415
    except ImportError:
        return None

    decode = msgspec.json.Decoder().decode
    decode_error = (msgspec.DecodeError, RecursionError)
    orjson_dumps = orjson.dumps

    def fast_loads(data: str | bytes | bytearray) -> Any:
        if type(data) is not str and type(data) is not bytes and type(data) is not bytearray:
            return _std_loads(data)
        try:
            return decode(data)
        except decode_error:
            return _std_loads(data)  # the stdlib's answer or the stdlib's exception

    def fast_dumpb(obj: Any) -> bytes:
        if _same_in_orjson(obj):
            try:
                return orjson_dumps(obj)
            except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a surrogate
                pass
        return _std_dumpb(obj)  # the stdlib's bytes, or its ValueError/TypeError

    def fast_dumps(obj: Any) -> str:
        if _same_in_orjson(obj):
            try:
                return orjson_dumps(obj).decode("utf-8")
            except TypeError:
                pass
        return _std_encode(obj)

    b64encode_as_string = pybase64.b64encode_as_string
    b64decode = pybase64.b64decode

    def fast_b64encode(data: Any) -> str:
        try:
            return b64encode_as_string(data)
        except (TypeError, ValueError):
            return _std_b64encode(data)

    def fast_b64decode(data: str | bytes | bytearray | memoryview) -> bytes:
        try:
            return b64decode(data, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return _std_b64decode(data)  # the stdlib's exception and message

    return {
        "loads": fast_loads,
        "dumpb": fast_dumpb,
        "dumps": fast_dumps,
        "b64encode": fast_b64encode,
        "b64decode": fast_b64decode,
    }


_fast = _fast_functions()
#: Whether the fast libraries are in use.
FAST: bool = _fast is not None
#: What does the work: ``"msgspec+orjson+pybase64"`` or ``"stdlib"``.
BACKEND: str = "msgspec+orjson+pybase64" if FAST else "stdlib"

loads: Callable[[str | bytes | bytearray], Any] = _std_loads
dumps: Callable[[Any], str] = _std_encode
dumpb: Callable[[Any], bytes] = _std_dumpb
b64encode: Callable[[Any], str] = _std_b64encode
b64decode: Callable[[str | bytes | bytearray | memoryview], bytes] = _std_b64decode
if _fast is not None:
    loads = _fast["loads"]
    dumps = _fast["dumps"]
    dumpb = _fast["dumpb"]
    b64encode = _fast["b64encode"]
    b64decode = _fast["b64decode"]
