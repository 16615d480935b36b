"""Helpers for validating and copying model configuration.

Every setting is checked in the constructor (no I/O), so ``get_model()`` fails at
once, naming the key, instead of ``start()`` failing (or hanging) later. Plugins use
the same helpers, so every numeric setting is checked alike::

    timeout = check_number(
        client_config.get("open_timeout", 30.0),
        where="client_config['open_timeout']", above=0, optional=True, unit="seconds",
    )
"""

from __future__ import annotations

import ipaddress
import math
import numbers
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ConfigError
from ._json import json_problem, short_repr
from .audio import check_sample_rate as _check_rate

__all__ = [
    "check_json",
    "check_keys",
    "check_model_id",
    "check_number",
    "check_sample_rate",
    "closest",
    "copy_config",
    "deep_merge",
    "is_loopback",
]


def closest(word: str, options: Iterable[str]) -> str | None:
    """Return the option closest to *word*, or None if nothing is close."""
    import difflib  # noqa: PLC0415 - only for a mistyped key

    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_keys(given: Mapping[str, Any], accepted: Iterable[str], *, where: str) -> None:
    """Raise :class:`ConfigError` if *given* has a key outside *accepted*.

    The message names the bad key, the closest accepted key and every accepted key.

    Args:
        given: The user's mapping.
        accepted: The keys that are understood.
        where: What the mapping is, e.g. ``"OpenAIRealtimeModel provider_config"``.
    """
    if not isinstance(typing.cast(object, given), Mapping):
        msg = f"{where} must be a dict (got {short_repr(given)}, a {type(given).__name__})."
        raise ConfigError(msg)
    accepted = sorted(accepted)
    for key in given:
        if key not in accepted:
            suggestion = closest(str(key), accepted)
            hint = f" Did you mean {suggestion!r}?" if suggestion else ""
            if not accepted:
                msg = f"Unknown key {key!r} in {where}, which takes no keys; leave it empty."
                raise ConfigError(msg)
            msg = f"Unknown key {key!r} in {where}.{hint} Accepted keys: {', '.join(accepted)}."
            raise ConfigError(msg)


def _bound(low: float | None, high: float | None, above: float | None) -> str:
    if above is not None and high is not None:
        return f" > {above:g} and <= {high:g}"
    if above is not None:
        return f" > {above:g}"
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" >= {low:g}"
    if high is not None:
        return f" <= {high:g}"
    return ""


def check_number(
    value: Any,
    *,
    where: str,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    integer: bool = False,
    optional: bool = False,
    unit: str = "",
) -> Any:
    """Return *value* as a checked ``float`` (or ``int``), or raise :class:`ConfigError`.

    A number is finite, not a ``bool`` and not a ``str`` (``'60'`` is refused, not
    parsed), and within the bounds given.

    Args:
        value: The user's value.
        where: What it is, e.g. ``"provider_config['connection_limit_s']"``.
        minimum: The smallest value accepted.
        maximum: The largest value accepted.
        above: Values must be greater than this (e.g. ``0`` for a timeout).
        integer: Only whole ``int`` values (returned as ``int``).
        optional: ``None`` is accepted (and returned).
        unit: Said in the message, e.g. ``"seconds"``.

    Returns:
        ``None`` (if *optional*), an ``int`` (if *integer*) or a ``float``.

    Raises:
        ConfigError: The message says what is accepted, with the value's ``repr``.
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(
        value, bool
    )
    number = float(value) if ok else math.nan
    ok = ok and math.isfinite(number)
    ok = ok and (minimum is None or number >= minimum) and (maximum is None or number <= maximum)
    ok = ok and (above is None or number > above)
    if not ok:
        kind = "an int" if integer else "a number"
        unit_text = f" of {unit}" if unit else ""
        none_text = ", or None" if optional else ""
        msg = (
            f"{where} must be {kind}{unit_text}{_bound(minimum, maximum, above)}{none_text} "
            f"(got {short_repr(value)})."
        )
        raise ConfigError(msg)
    return int(value) if integer else number


def check_sample_rate(value: Any, *, where: str) -> int:
    """Return *value* as an ``int`` rate from 8,000 to 192,000 Hz, or raise :class:`ConfigError`."""
    try:
        return _check_rate(value, where=where)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def check_model_id(model_id: Any, *, where: str, example: str) -> str:
    """Return *model_id* if it is a non-empty ``str``, or raise :class:`ConfigError`."""
    if isinstance(model_id, str) and model_id.strip():
        return model_id
    msg = (
        f"{where} model_id must be a non-empty str such as {example!r} "
        f"(got {short_repr(model_id)})."
    )
    raise ConfigError(msg)


def check_json(value: Any, *, where: str, objects_ok: bool = False) -> None:
    """Raise :class:`ConfigError` unless *value* is strict JSON (settings passed to a provider).

    Pass-through settings go on the wire as JSON: a NaN or infinity would be written as
    the non-JSON ``NaN`` the provider refuses, and deep nesting would fail while encoding.
    With *objects_ok*, objects other than JSON values (SDK config objects, which the
    SDK serializes and checks itself) are let through.
    """
    problem = json_problem(value, objects_ok=objects_ok)
    if problem is not None:
        msg = f"{where} must be JSON data, but it has {problem}."
        raise ConfigError(msg)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new dict: *base* recursively updated with *override*; inputs are not mutated.

    A value of ``None`` in *override* replaces (it does not delete) the base value,
    so a provider field can be set to JSON ``null`` explicitly.
    """
    merged: dict[str, Any] = copy_config(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy_config(value)
    return merged


def copy_config(value: Any) -> Any:
    """Deep-copy plain data (dicts, lists, tuples); keep every other object by reference.

    Live objects passed in config (a boto3 session, an SSL context, an SDK client)
    must be shared, not deep-copied.
    """
    if isinstance(value, Mapping):
        return {k: copy_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_config(v) for v in value]
    if isinstance(value, tuple):
        return tuple(copy_config(v) for v in value)
    if isinstance(value, set):
        return set(value)
    if isinstance(value, str | bytes | int | float | bool | type(None)):
        return value
    return value


def is_loopback(host: str) -> bool:
    """Return whether *host* is this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
