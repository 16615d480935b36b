"""Turning ``to_dict()`` output back into events: :func:`bidi_core.events.from_dict`."""

from __future__ import annotations

import base64
import binascii
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from ._json import nesting_problem

__all__ = ["EventDecodeError", "decode", "json_copy"]


class EventDecodeError(ValueError):
    """A dictionary could not be turned into an event; the message says which field is wrong."""


def json_copy(value: Any) -> Any:
    """Copy dicts and lists (tuples become lists), keeping every other value."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_copy(v) for v in value]
    return value


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    """Return the resolved type hints of an event class or a ``TypedDict`` (cached)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def _describe(value: Any) -> str:
    return type(value).__name__


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """Check *value* against *hint* and decode what JSON cannot carry (bytes, tuples)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(where, option, value)
            except EventDecodeError as exc:
                errors.append(str(exc))
        raise EventDecodeError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            msg = f"{where} must be one of {allowed!r} (got {value!r})."
            raise EventDecodeError(msg)
        return value
    if hint is bytes:
        if not isinstance(value, str):
            msg = f"{where} must be a base64 string (got {_describe(value)})."
            raise EventDecodeError(msg)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"{where} is not valid base64: {exc}."
            raise EventDecodeError(msg) from exc
    if hint is bool:
        if not isinstance(value, bool):
            msg = f"{where} must be a bool (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            msg = f"{where} must be an int (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is str:
        if not isinstance(value, str):
            msg = f"{where} must be a str (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is Any:
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list (got {_describe(value)})."
            raise EventDecodeError(msg)
        return [_coerce(f"{where}[{i}]", item_hint, v) for i, v in enumerate(value)]
    if origin is tuple:
        (item_hint, _) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list (got {_describe(value)})."
            raise EventDecodeError(msg)
        return tuple(_coerce(f"{where}[{i}]", item_hint, v) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            msg = f"{where} must be an object (got {_describe(value)})."
            raise EventDecodeError(msg)
        _, value_hint = typing.get_args(hint)
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{where} must have str keys (got {key!r})."
                raise EventDecodeError(msg)
            if value_hint is not Any:
                _coerce(f"{where}[{key!r}]", value_hint, item)
        return dict(value)
    if typing.is_typeddict(hint):
        # ToolUse, ToolResult and their parts: check the keys they declare, keep the rest.
        if not isinstance(value, Mapping):
            msg = f"{where} must be an object (got {_describe(value)})."
            raise EventDecodeError(msg)
        hints = _hints(hint)
        required: frozenset[str] = hint.__required_keys__
        missing = [k for k in hints if k in required and k not in value]
        if missing:
            msg = f"{where} is missing key(s) {', '.join(map(repr, missing))}."
            raise EventDecodeError(msg)
        for key, item in value.items():
            if key in hints:
                _coerce(f"{where}[{key!r}]", hints[key], item)
        return json_copy(dict(value))
    return value  # pragma: no cover - every field hint is handled above


def decode(data: Mapping[str, Any], classes: Mapping[str, Any]) -> Any:
    """Rebuild an event of one of *classes* (``type`` -> class) from *data*.

    See :func:`bidi_core.events.from_dict`.
    """
    if not isinstance(typing.cast(object, data), Mapping):
        msg = f"An event must be a mapping with a 'type' key (got {_describe(data)})."
        raise EventDecodeError(msg)
    # Checked first, without recursion: the field checks below recurse per level.
    problem = nesting_problem(dict(data))
    if problem is not None:
        msg = f"An event mapping must be JSON data, but it has {problem}."
        raise EventDecodeError(msg)
    if "type" not in data:
        msg = (
            "An event mapping needs a 'type' key naming its event type, e.g. "
            f"'bidi_text_input' (got keys {sorted(map(str, data))!r})."
        )
        raise EventDecodeError(msg)
    event_type = data.get("type")
    cls = classes.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(event_type), classes, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        msg = f"Unknown event type {event_type!r}.{hint} Known types: {', '.join(sorted(classes))}."
        raise EventDecodeError(msg)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(data) - set(fields) - {"type"}, key=str)
    if unknown:
        msg = (
            f"{event_type!r} event has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"accepted fields: {', '.join(fields)}."
        )
        raise EventDecodeError(msg)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is attrs.NOTHING:
                msg = f"{event_type!r} event is missing the required field {name!r}."
                raise EventDecodeError(msg)
            continue
        kwargs[name] = _coerce(f"{event_type!r} field {name!r}", hints[name], data[name])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the event's own field checks
        msg = f"{event_type!r} event is invalid: {exc}"
        raise EventDecodeError(msg) from exc
