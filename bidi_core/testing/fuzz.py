"""Hypothesis strategies and a check for fuzzing a plugin's server-frame decoder.

A decoder (the pure function or class in a plugin's ``_wire.py`` that turns provider
frames into events) must answer *any* input with events (a
:class:`~bidi_core.BidiErrorEvent` for what it cannot read) or a typed
:class:`~bidi_core.BidiError`, never an unhandled ``KeyError``, ``TypeError``,
``AttributeError`` ...::

    from hypothesis import given
    from bidi_core.testing.fuzz import check_decoder, frame_sequences

    VALID = [{"type": "response.created", "response": {"id": "r1"}}, ...]

    @given(frames=frame_sequences(VALID))
    def test_decoder_survives_garbage(frames):
        decoder = Decoder()
        for frame in frames:
            check_decoder(lambda f: decoder.feed_raw(f, 0.0).events, frame)

It also fuzzes building events (:func:`event_kwargs`, :func:`check_event`): every
field gets a valid value or anything a caller might pass by mistake (``None``, NaN,
``"16000"``, a value nested 1,500 deep, an ``object()``...), and the event must either
be built (and then survive a strict JSON round trip) or refuse with a ``TypeError`` or
``ValueError`` naming the class and the field.

The strategies mix random bytes, random text, random JSON values and, most useful,
*valid frames you give* with a key deleted, a value replaced by random JSON (a
mistyped field) or by an odd value of the right type (a cut string, a huge number),
or the encoded frame truncated. Sequences start with valid frames so
that the decoder reaches its deeper states before the garbage arrives.

This module needs ``hypothesis`` (it is in the test dependencies); the rest of
:mod:`bidi_core.testing` does not import it.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Union

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .._errors import BidiError
from ..events import BidiEvent, from_dict

__all__ = [
    "DecoderCrashError",
    "EventCheckError",
    "check_decoder",
    "check_event",
    "event_kwargs",
    "frame_sequences",
    "json_values",
    "load_hypothesis_profile",
    "mutated",
    "odd_values",
    "raw_frames",
    "valid_event_kwargs",
]


def load_hypothesis_profile(default: str = "ci") -> str:
    """Register bidi's hypothesis profiles and load the one ``$HYPOTHESIS_PROFILE`` names.

    Call it from a ``conftest.py`` so that every suite (the core's, each plugin's, a
    third party's) runs property tests alike: ``ci`` (the default) 100 examples per
    test, ``thorough`` 1,000 (what ``nox -s fuzz`` uses), ``dev`` 20. None has a
    deadline: these machines are noisy, and no test asserts a time.

    Returns:
        The name of the loaded profile.
    """
    quiet = [HealthCheck.too_slow]
    settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=quiet)
    settings.register_profile(
        "thorough", max_examples=1000, deadline=None, suppress_health_check=quiet
    )
    settings.register_profile("dev", max_examples=20, deadline=None)
    name = os.environ.get("HYPOTHESIS_PROFILE", default)
    settings.load_profile(name)
    return name


class DecoderCrashError(AssertionError):
    """A decoder raised an untyped exception or returned something that is not an event."""


def json_values(*, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (no NaN or infinities): scalars, lists and objects, nested."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path into a JSON value (not the root)."""
    out: list[tuple[Any, ...]] = []
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, child in items:
        path = (*prefix, key)
        out.append(path)
        out.extend(_paths(child, path))
    return out


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def _mutation(draw: st.DrawFn, frame: Any) -> Any:
    paths = _paths(frame)
    if not paths:
        return draw(json_values())
    value = _copy(frame)
    leaves = [p for p in paths if not isinstance(_parent(value, p)[p[-1]], dict | list)]
    # Mostly leaves: that is where decoders read (and mistrust) field values.
    use_leaves = bool(leaves) and draw(st.integers(0, 3)) > 0
    pool = leaves if use_leaves else paths
    path = draw(st.sampled_from(pool))
    parent = _parent(value, path)
    how = draw(st.sampled_from(("perturb", "retype", "perturb", "delete")))
    if how == "delete":
        del parent[path[-1]]  # a missing field
    elif how == "retype":
        parent[path[-1]] = draw(json_values(max_leaves=4))  # a mistyped field
    else:
        parent[path[-1]] = draw(_same_type(parent[path[-1]]))  # a bad value of the right type
    return value


def _same_type(value: Any) -> st.SearchStrategy[Any]:
    """Another value of *value*'s JSON type: odd strings and numbers, cut containers."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([0, -1, 2**63, -(2**31)]) | st.integers()
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        cut = st.integers(0, max(0, len(value) - 1)).map(lambda n: value[:n])
        return cut | st.text(max_size=24) | st.sampled_from(["", " ", "{", "=", "\x00"])
    if isinstance(value, list):
        return st.just(value[: len(value) // 2]) | st.just([None, *value])
    if isinstance(value, dict):
        return st.just({}) | st.just(dict.fromkeys(value))
    return json_values(max_leaves=2)


def mutated(valid: Sequence[Any]) -> st.SearchStrategy[Any]:
    """A frame from *valid* with one, two or three fields deleted or replaced by random JSON."""
    if not valid:
        msg = "mutated() needs at least one valid frame to mutate."
        raise ValueError(msg)

    def mutate_n(frame: Any) -> st.SearchStrategy[Any]:
        strategy: st.SearchStrategy[Any] = _mutation(frame)
        return st.one_of(
            strategy,
            strategy.flatmap(_mutation),
            strategy.flatmap(_mutation).flatmap(_mutation),
        )

    return st.sampled_from([_copy(f) for f in valid]).flatmap(mutate_n)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def raw_frames(
    valid: Sequence[Any], *, encode: Callable[[Any], bytes] = _dumps
) -> st.SearchStrategy[bytes]:
    """Encoded frames: garbage bytes and text, random JSON, mutated and truncated valid frames.

    Args:
        valid: Valid provider frames (JSON values) to start from.
        encode: Turns a JSON value into the bytes of one frame (JSON by default).
    """
    truncated = st.sampled_from([encode(_copy(f)) for f in valid]).flatmap(
        lambda data: st.integers(0, max(0, len(data) - 1)).map(lambda n: data[:n])
    )
    noise = st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64).map(lambda t: t.encode("utf-8")),
        json_values().map(encode),
        truncated,
    )
    # Mutated valid frames reach the decoder's field handling: give them most of the draws.
    return st.one_of(noise, mutated(valid).map(encode), mutated(valid).map(encode))


def frame_sequences(
    valid: Sequence[Any],
    *,
    raw: bool = True,
    encode: Callable[[Any], bytes] = _dumps,
    max_size: int = 6,
) -> st.SearchStrategy[list[Any]]:
    """Lists of frames: some valid ones first (to reach deeper states), then anything.

    Args:
        valid: Valid provider frames (JSON values).
        raw: Yield encoded bytes (:func:`raw_frames`); False yields JSON values
            (:func:`mutated` frames, random JSON and valid frames) for decoders that
            take parsed frames.
        encode: With ``raw``, turns a JSON value into one frame's bytes.
        max_size: The longest sequence.
    """
    good: st.SearchStrategy[Any] = st.sampled_from([_copy(f) for f in valid])
    if raw:
        good = good.map(encode)
        anything: st.SearchStrategy[Any] = raw_frames(valid, encode=encode)
    else:
        anything = st.one_of(mutated(valid), json_values(), good)
    return st.tuples(
        st.lists(good, max_size=max_size // 2), st.lists(anything, min_size=1, max_size=max_size)
    ).map(lambda parts: [*parts[0], *parts[1]])


def check_decoder(decode: Callable[..., Iterable[Any]], *args: Any) -> list[BidiEvent]:
    """Call *decode*; it must return bidi events or raise a typed :class:`~bidi_core.BidiError`.

    Every event must also survive ``json.dumps(event.to_dict())``.

    Args:
        decode: Decodes one frame and returns the events it produced.
        *args: Passed to *decode* (e.g. the frame).

    Returns:
        The events (empty if it raised a ``BidiError``).

    Raises:
        DecoderCrashError: *decode* raised anything else, or returned a non-event.
    """
    try:
        events = list(decode(*args))
    except BidiError:
        return []
    except Exception as exc:
        msg = f"The decoder crashed with {type(exc).__name__}: {exc}"
        raise DecoderCrashError(msg) from exc
    wrong = [e for e in events if not isinstance(e, BidiEvent)]
    if wrong:
        msg = f"The decoder returned non-events: {wrong[:3]!r}"
        raise DecoderCrashError(msg)
    for event in events:
        try:
            json.dumps(event.to_dict())
        except Exception as exc:
            msg = f"The decoder built an event that cannot be serialized: {event!r} ({exc})"
            raise DecoderCrashError(msg) from exc
    return events


# ------------------------------------------------------------ building events


class EventCheckError(AssertionError):
    """Building an event raised something other than a clear TypeError/ValueError."""


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@functools.cache
def odd_values() -> st.SearchStrategy[Any]:
    """Values a caller passes by mistake: wrong types, NaN, kHz for Hz, deep nesting, objects."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and infinities included
        st.text(max_size=12),
        st.binary(max_size=12),
        st.binary(max_size=8).map(bytearray),
        st.builds(object),
        st.sampled_from([0, -1, 16, 1e9, "16000", "", b"", 2**63, -(2**63)]),
    )
    containers = st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.lists(children, max_size=3).map(tuple)
            | st.dictionaries(st.text(max_size=6) | st.integers(), children, max_size=3)
        ),
        max_leaves=6,
    )
    return st.one_of(containers, st.integers(90, 1500).map(_nested))


_JSON_FOR_FIELDS = json_values()
#: Fields whose valid values are narrower than their type.
_NARROW: dict[str, st.SearchStrategy[Any]] = {
    "sample_rate": st.integers(8000, 192_000),
    "channels": st.integers(1, 8),
    "dropped_chunks": st.integers(min_value=0),
    "dropped_bytes": st.integers(min_value=0),
}


def _valid(hint: Any) -> st.SearchStrategy[Any]:
    """A valid value for a field type hint of an event; an unknown hint fails loudly."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return st.one_of(*(_valid(arg) for arg in args))
    if origin is Literal:
        return st.sampled_from(args)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        str: st.text(max_size=24),
        bytes: st.binary(max_size=64),
        bool: st.booleans(),
        int: st.integers(),
        Any: _JSON_FOR_FIELDS,
    }
    if hint in simple:
        return simple[hint]
    if origin is tuple:
        return st.lists(_valid(args[0]), max_size=3).map(tuple)
    if origin is list:
        return st.lists(_valid(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), _valid(args[1]), max_size=3)
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        required = {k: _valid(v) for k, v in hints.items() if k in hint.__required_keys__}
        optional = {k: _valid(v) for k, v in hints.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    msg = f"No strategy for the event field type {hint!r}; teach fuzz._valid() about it."
    raise TypeError(msg)


def _kwargs(cls: type[BidiEvent], *, odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        valid = _NARROW.get(field.name, _valid(hints[field.name]))
        strategy = st.one_of(valid, valid, odd_values()) if odd else valid
        # Fields with defaults are sometimes left out (odd values give every field).
        target = required if odd or field.default is attrs.NOTHING else optional
        target[field.name] = strategy
    return st.fixed_dictionaries(required, optional=optional).map(_consistent)


@functools.cache
def valid_event_kwargs(cls: type[BidiEvent]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid keyword arguments for *cls* (fields with defaults sometimes left out)."""
    return _kwargs(cls, odd=False)


@functools.cache
def event_kwargs(cls: type[BidiEvent]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for *cls*: each field valid, or (often) an odd value.

    Image events with ``encoding="base64"`` get base64 text when the image is valid
    bytes, so that the valid path is reached too.
    """
    return _kwargs(cls, odd=True)


def _consistent(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("encoding") == "base64" and isinstance(kwargs.get("image"), bytes):
        kwargs["image"] = base64.b64encode(kwargs["image"])
    return kwargs


def check_event(cls: type[BidiEvent], kwargs: dict[str, Any]) -> BidiEvent | None:
    """Build ``cls(**kwargs)``: an event that round-trips, or a clear refusal.

    Returns:
        The event, or None if it was refused with a ``TypeError``/``ValueError``
        whose message names ``Class.field`` (or the field) of one of *kwargs*.

    Raises:
        EventCheckError: Any other exception; a refusal that names no field; or an
            event whose ``to_dict()`` is not strict JSON or does not rebuild the same.
    """
    try:
        event = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if not any(name in message for name in kwargs):
            msg = f"{cls.__name__}(...) refused a value without naming the field: {message}"
            raise EventCheckError(msg) from exc
        return None
    except Exception as exc:
        msg = f"{cls.__name__}(...) raised {type(exc).__name__}: {exc}"
        raise EventCheckError(msg) from exc
    try:
        data = json.loads(json.dumps(event.to_dict(), allow_nan=False))
        again = from_dict(data)
    except Exception as exc:
        msg = f"{event!r} was built but does not survive a strict JSON round trip: {exc}"
        raise EventCheckError(msg) from exc
    if again.to_dict() != event.to_dict():
        msg = f"{event!r} came back from JSON as {again!r}."
        raise EventCheckError(msg)
    return event
