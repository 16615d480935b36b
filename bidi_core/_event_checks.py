"""The field checks every event runs when it is built (see :mod:`bidi_core.events`).

A wrong value fails at once with the class, the field and what is expected, instead
of deep inside a provider's wire code (or on the provider's side). Audio events are
built ~50 times a second per session: their check is one function with a fast path
for the usual types, and every other event checks its ``str`` fields inline before
calling these (which only run when something is off).
"""

from __future__ import annotations

import base64
import binascii
import numbers
import typing
from collections.abc import Mapping
from typing import Any, NoReturn

from ._json import json_problem, short_repr
from .audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, check_sample_rate

__all__ = [
    "check_audio",
    "check_base64",
    "need_bool",
    "need_bytes",
    "need_int",
    "need_json",
    "need_json_dict",
    "need_str",
    "need_typed_dict",
    "wrong",
]


def wrong(event: object, name: str, expected: str, value: Any, error: type = TypeError) -> NoReturn:
    got = short_repr(value)
    if error is TypeError:
        got = f"{got}, a {type(value).__name__}"
    msg = f"{type(event).__name__}.{name} must be {expected} (got {got})."
    raise error(msg)


def need_str(event: object, name: str, *, optional: bool = False) -> None:
    value = getattr(event, name)
    if isinstance(value, str) or (optional and value is None):
        return
    wrong(event, name, "a str or None" if optional else "a str", value)


def need_bool(event: object, name: str) -> None:
    value = getattr(event, name)
    if not isinstance(value, bool):
        wrong(event, name, "a bool", value)


def need_int(event: object, name: str, *, low: int | None = None) -> None:
    value = getattr(event, name)
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            wrong(event, name, "an int", value)
        value = int(value)
        object.__setattr__(event, name, value)
    if low is not None and value < low:
        wrong(event, name, f"an int >= {low}", value, ValueError)


def need_bytes(event: object, name: str, hint: str) -> None:
    value = getattr(event, name)
    if isinstance(value, bytes):
        return
    if isinstance(value, bytearray | memoryview):
        object.__setattr__(event, name, bytes(value))
        return
    wrong(event, name, f"bytes ({hint})", value)


def need_json(event: object, name: str) -> None:
    problem = json_problem(getattr(event, name))
    if problem is not None:
        msg = f"{type(event).__name__}.{name} must be JSON data, but it has {problem}."
        raise ValueError(msg)


def need_json_dict(event: object, name: str) -> None:
    if not isinstance(getattr(event, name), dict):
        wrong(event, name, "a dict", getattr(event, name))
    need_json(event, name)


def need_typed_dict(event: object, name: str, keys: dict[str, str]) -> Mapping[str, Any]:
    """Check a ToolUse/ToolResult-shaped field: a dict with these str-typed keys, all JSON."""
    value = getattr(event, name)
    if not isinstance(value, dict):
        wrong(event, name, f"a dict with keys {', '.join(map(repr, keys))}", value)
    missing = [key for key in keys if key not in value]
    if missing:
        msg = (
            f"{type(event).__name__}.{name} is missing the key(s) "
            f"{', '.join(map(repr, missing))}; it needs {', '.join(map(repr, keys))}."
        )
        raise ValueError(msg)
    for key, expected in keys.items():
        if expected == "str" and not isinstance(value[key], str):
            wrong(event, f"{name}[{key!r}]", "a str", value[key])
    need_json(event, name)
    return typing.cast(Mapping[str, Any], value)


def check_audio(event: Any) -> None:
    """Check an audio event (the hot path: one call, no work for the usual types)."""
    if type(event.audio) is not bytes:
        need_bytes(event, "audio", "PCM16 samples; use bytes(...) or array.tobytes()")
    rate = event.sample_rate
    if type(rate) is not int or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        where = f"{type(event).__name__}.sample_rate"
        object.__setattr__(event, "sample_rate", check_sample_rate(rate, where=where))
    if type(event.format) is not str:
        need_str(event, "format")
    channels = event.channels
    if type(channels) is not int or channels < 1:
        need_int(event, "channels", low=1)


def check_base64(event: Any, name: str) -> None:
    """Refuse a base64 field whose text does not decode."""
    try:
        base64.b64decode(getattr(event, name), validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = (
            f"{type(event).__name__}.{name} is not valid base64 ({exc}); pass the file "
            "bytes with encoding='raw', or base64 text with encoding='base64'."
        )
        raise ValueError(msg) from None
