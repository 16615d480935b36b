"""Strict JSON checks shared by events, tool results, config and the registry.

Python's :mod:`json` writes ``NaN`` and ``Infinity`` (which are not JSON) and
recurses once per nesting level (so a value nested ~1,000 deep raises
``RecursionError``). :func:`json_problem` walks a value without recursion and says
what keeps it from being strict JSON, so that every caller can refuse it with an
error of its own kind that names the field.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "json_problem", "loads", "nesting_problem", "short_repr"]

#: Deepest nesting of dicts and lists accepted in events, tool results and config.
#: Providers parse JSON with limits of this order (protobuf's is 100), and it keeps
#: every recursive copy far from Python's recursion limit.
MAX_JSON_DEPTH: Final = 100


_REPR = reprlib.Repr(maxlevel=4, maxdict=6, maxlist=6, maxtuple=6, maxstring=50, maxother=50)


def short_repr(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)``, cut to about *limit* characters (big payloads stay readable).

    Nesting is cut too (``[[[[...]]]]``), so a value nested 1,000 deep costs nothing.
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the real problem
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def _where(path: tuple[Any, ...]) -> str:
    if not path:
        return "the top level"
    if len(path) > 8:  # deep paths show their two ends
        return (
            "".join(f"[{k!r}]" for k in path[:3])
            + "...("
            + f"{len(path) - 6} more)"
            + ("".join(f"[{k!r}]" for k in path[-3:]))
        )
    return "".join(f"[{key!r}]" for key in path)


def _plainly_json(value: Any, max_depth: int) -> bool:
    """Whether *value* is strict JSON made of exact built-in types (the fast, usual case)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is dict:
            if depth >= max_depth:
                return False
            for key, child in item.items():
                if type(key) is not str:
                    return False
                kind = type(child)
                if kind is not str and kind is not int and kind is not bool and child is not None:
                    push((child, depth + 1))
        elif kind is list or kind is tuple:
            if depth >= max_depth:
                return False
            for child in item:
                kind = type(child)
                if kind is not str and kind is not int and kind is not bool and child is not None:
                    push((child, depth + 1))
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif kind is not str and kind is not int and kind is not bool and item is not None:
            return False  # maybe a subclass (an enum): the careful walk decides
    return True


def json_problem(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, objects_ok: bool = False
) -> str | None:
    """Return what keeps *value* from being strict JSON, or None if it is.

    Strict JSON here: ``dict`` (``str`` keys), ``list``, ``tuple``, ``str``, ``int``,
    ``bool``, ``None`` and finite ``float`` (subclasses too), nested at most
    *max_depth* levels. The walk is iterative: any depth is safe to check.

    Args:
        value: The value to check (not modified).
        max_depth: The deepest nesting accepted.
        objects_ok: Let other objects through (e.g. SDK config objects in settings
            that an SDK serializes itself); their contents are not checked.

    Returns:
        A phrase such as ``"nan at ['a'][0] (JSON has no NaN or infinity)"``, to put
        after "has" in a message; None if *value* is strict JSON.
    """
    if not objects_ok and _plainly_json(value, max_depth):
        return None
    # The careful walk: subclasses, and the path of the problem for the message.
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    pop, push = stack.pop, stack.append
    while stack:
        item, path = pop()
        if isinstance(item, float):
            if math.isfinite(item):
                continue
            return f"{item!r} at {_where(path)} (JSON has no NaN or infinity)"
        if item is None or isinstance(item, str | int):  # bool is an int
            continue
        if not isinstance(item, dict | list | tuple):
            if objects_ok:
                continue
            return f"a value of type {type(item).__name__} at {_where(path)}, which is not JSON"
        if len(path) >= max_depth:
            return f"nesting deeper than {max_depth} levels at {_where(path)}"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"the non-str key {short_repr(key)} at {_where(path)}"
                push((child, (*path, key)))
        else:
            for index, child in enumerate(item):
                push((child, (*path, index)))
    return None


def nesting_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Return where *value*'s dicts and lists nest deeper than *max_depth*, or None.

    For callers that check everything else themselves, field by field, but recurse.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth:
            return f"nesting deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON like :func:`json.loads`, but refuse ``NaN``/``Infinity`` (``ValueError``).

    Python's parser accepts those literals, so a provider frame holding one would reach
    the events, which refuse it. Decoders use this; their ``except ValueError`` then
    treats such a frame as not JSON.
    """
    import json  # noqa: PLC0415 - not needed to list models (the registry imports us)

    return json.loads(data, parse_constant=_no_constant)
