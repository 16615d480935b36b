"""GA Realtime schema checks built on the ``openai`` package's pydantic types (test extra).

* :func:`validate_client_event` is strict, like the real service: an unknown
  event type, a missing or mistyped field, or a field the GA schema does not
  have (e.g. beta ``modalities``) is a :class:`SchemaError` carrying the
  ``code`` and ``param`` the service would put in its ``error`` event.
* :func:`validate_server_event` checks what the fake emits: a GA event type
  (beta names such as ``response.audio.delta`` or ``conversation.item.created``
  are refused) whose fields validate against its openai model.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any

import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

from .._wire import BETA_EVENT_TYPES

__all__ = [
    "SchemaError",
    "client_event_types",
    "server_event_types",
    "validate_client_event",
    "validate_server_event",
]


class SchemaError(ValueError):
    """A frame does not follow the GA schema.

    Attributes:
        code: The service's error code (``unknown_parameter``, ``invalid_value``, ...).
        param: Dotted path of the offending field, if any.
    """

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def _variants(alias: Any) -> dict[str, type[pydantic.BaseModel]]:
    union = typing.get_args(alias)[0] if typing.get_origin(alias) is typing.Annotated else alias
    out: dict[str, type[pydantic.BaseModel]] = {}
    for cls in typing.get_args(union):
        literal = cls.model_fields["type"].annotation
        for name in typing.get_args(literal):
            out[str(name)] = cls
    return out


@functools.cache
def _client() -> dict[str, type[pydantic.BaseModel]]:
    return _variants(RealtimeClientEvent)


@functools.cache
def _server() -> dict[str, type[pydantic.BaseModel]]:
    table = _variants(RealtimeServerEvent)
    for beta in BETA_EVENT_TYPES:
        table.pop(beta, None)
    return table


def client_event_types() -> frozenset[str]:
    """The GA client event types."""
    return frozenset(_client())


def server_event_types() -> frozenset[str]:
    """The GA server event types (beta names excluded)."""
    return frozenset(_server())


def _extras(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found.extend(f"{path}.{key}".lstrip(".") for key in (value.model_extra or {}))
        for name in type(value).model_fields:
            found.extend(_extras(getattr(value, name), f"{path}.{name}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_extras(item, f"{path}[{index}]"))
    return found


def _pydantic_error(kind: str, exc: pydantic.ValidationError) -> SchemaError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ()))
    code = "missing_required_parameter" if first.get("type") == "missing" else "invalid_value"
    msg = f"Invalid {kind!r} event: {param or 'event'}: {first.get('msg')}."
    return SchemaError(msg, code=code, param=param or None)


def validate_client_event(event: Mapping[str, Any]) -> pydantic.BaseModel:
    """Validate a client event strictly; return the parsed openai model.

    Raises:
        SchemaError: Unknown type, invalid or unknown field.
    """
    kind = event.get("type")
    cls = _client().get(str(kind))
    if cls is None:
        msg = f"Invalid value: {kind!r}. Supported values are: {', '.join(sorted(_client()))}."
        raise SchemaError(msg, code="invalid_value", param="type")
    try:
        model = cls.model_validate(dict(event))
    except pydantic.ValidationError as exc:
        raise _pydantic_error(str(kind), exc) from exc
    extra = _extras(model, "")
    if extra:
        msg = f"Unknown parameter: '{extra[0]}'."
        raise SchemaError(msg, code="unknown_parameter", param=extra[0])
    return model


def validate_server_event(event: Mapping[str, Any]) -> pydantic.BaseModel:
    """Validate a server event (GA type, fields per the openai model).

    Raises:
        SchemaError: A beta or unknown type, or invalid fields.
    """
    kind = str(event.get("type"))
    if kind in BETA_EVENT_TYPES:
        msg = f"{kind!r} is a beta Realtime event; the GA protocol never sends it."
        raise SchemaError(msg, code="beta_event", param="type")
    cls = _server().get(kind)
    if cls is None:
        msg = f"{kind!r} is not a GA Realtime server event."
        raise SchemaError(msg, code="invalid_value", param="type")
    try:
        return cls.model_validate(dict(event))
    except pydantic.ValidationError as exc:
        raise _pydantic_error(kind, exc) from exc
