"""Helpers for validating and copying model configuration."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ConfigError

__all__ = ["check_keys", "closest", "deep_merge", "copy_config", "is_loopback"]


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
