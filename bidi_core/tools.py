"""Tools: ``@tool`` turns a function into something a model can call.

::

    from typing import Literal
    from bidi_core import tool

    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        \"\"\"Get the current weather.

        Args:
            city: The city, e.g. "Paris".
            unit: Temperature unit.
        \"\"\"
        return f"sunny, 21 {unit} in {city}"

    get_weather("Paris")    # still a plain function
    get_weather.tool_spec   # {"name": "get_weather", "description": ..., "inputSchema": ...}

The JSON schema comes from the signature (``str``, ``int``, ``float``, ``bool``,
``Literal``, ``Enum``, ``list``, ``tuple``, ``dict``, ``Optional``/``X | None``,
``Any``, nested ``TypedDict`` and dataclasses, ``Annotated[X, "description"]``) and
parameter descriptions from the Google-style ``Args:`` section of the docstring.
Sync tools run in a worker thread so they never block the event loop; async tools
are awaited. :meth:`AgentTool.invoke` always returns a :data:`ToolResult`: an
exception, a bad argument or a timeout becomes an ``"error"`` result whose text says
what happened, so the conversation goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import json
import logging
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, Union, overload

from ._errors import ToolError
from ._json import MAX_JSON_DEPTH, json_problem
from .types import ToolResult, ToolResultContent, ToolSpec, ToolUse

__all__ = ["AgentTool", "tool", "tool_result_text", "to_agent_tool"]

logger = logging.getLogger("bidi_core.tools")

P = ParamSpec("P")
R = TypeVar("R")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_SECTION_RE = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Return|Yields|Raises|Examples?|Notes?|Attributes):\s*$"
)


class AgentTool[**P, R]:
    """A callable function with a :data:`ToolSpec`, as built by :func:`tool`.

    Calling the object calls the function. :meth:`invoke` runs it for a model's
    :data:`ToolUse` and returns a :data:`ToolResult`.

    Attributes:
        tool_spec: What the model is told about the tool.
        name: The tool's name (``tool_spec["name"]``).
        timeout: Seconds a call may take before it becomes an error result, or
            None to use the agent's default.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if not callable(typing.cast(object, func)):
            msg = f"@tool needs a function, got {func!r}."
            raise ToolError(msg)
        tool_name: str = name or str(getattr(func, "__name__", ""))
        if not _NAME_RE.match(tool_name):
            msg = (
                f"Tool name {tool_name!r} is not valid: use letters, digits, '_' or '-' "
                "(at most 64, starting with a letter or '_'); pass @tool(name=...)."
            )
            raise ToolError(msg)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            msg = f"A tool timeout must be a number of seconds > 0, or None (got {timeout!r})."
            raise ToolError(msg)
        self.func = func
        self.name = tool_name
        self.timeout = timeout
        self._signature = inspect.signature(func)
        summary, arg_docs = _parse_docstring(inspect.getdoc(func) or "")
        self._hints = _type_hints(func)
        self.tool_spec: ToolSpec = {
            "name": tool_name,
            "description": str(description or summary or tool_name),
            "inputSchema": {"json": self._schema(arg_docs)},
        }
        self._is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - async callable objects
        )
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<AgentTool {self.name!r}>"

    # ------------------------------------------------------------- schema

    def _schema(self, arg_docs: dict[str, str]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for param in self._signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            hint = self._hints.get(param.name, Any)
            try:
                prop = json_schema(hint)
            except ToolError as exc:
                msg = f"Tool {self.name!r}, parameter {param.name!r}: {exc}"
                raise ToolError(msg) from exc
            if param.name in arg_docs and "description" not in prop:
                prop = {**prop, "description": arg_docs[param.name]}
            if param.default is param.empty:
                required.append(param.name)
            elif _jsonable(param.default):
                prop = {**prop, "default": _plain(param.default)}
            properties[param.name] = prop
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema

    # ------------------------------------------------------------- calling

    def _arguments(self, tool_input: Any) -> dict[str, Any]:
        if tool_input is None:
            tool_input = {}
        if isinstance(tool_input, str):
            try:
                tool_input = json.loads(tool_input) if tool_input.strip() else {}
            except ValueError as exc:
                msg = f"the arguments are not valid JSON ({exc})"
                raise _BadArgumentsError(msg) from exc
        if not isinstance(tool_input, Mapping):
            msg = f"the arguments must be a JSON object, got {type(tool_input).__name__}"
            raise _BadArgumentsError(msg)
        params = self._signature.parameters
        accepts_extra = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in tool_input if k not in params and not accepts_extra]
        if unknown:
            msg = f"unknown argument(s) {', '.join(map(repr, unknown))}; expected {list(params)}"
            raise _BadArgumentsError(msg)
        missing = [
            p.name
            for p in params.values()
            if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in tool_input
        ]
        if missing:
            msg = f"missing required argument(s) {', '.join(map(repr, missing))}"
            raise _BadArgumentsError(msg)
        args: dict[str, Any] = {}
        for key, value in tool_input.items():
            hint = self._hints.get(key, Any)
            try:
                args[key] = _convert(hint, value)
            except (TypeError, ValueError) as exc:
                msg = f"argument {key!r}: {exc}"
                raise _BadArgumentsError(msg) from exc
        return args

    async def invoke(
        self, tool_use: ToolUse, *, default_timeout: float | None = None
    ) -> ToolResult:
        """Run the tool for *tool_use* and return its result; never raises for tool failures.

        Args:
            tool_use: The model's request (``toolUseId``, ``name``, ``input``).
            default_timeout: Seconds allowed when the tool has no timeout of its own.

        Returns:
            A ``"success"`` result with the return value (``str`` as text, other
            values as JSON), or an ``"error"`` result saying what went wrong.

        Raises:
            asyncio.CancelledError: The call was cancelled (the caller sends the result).
        """
        tool_use_id = tool_use["toolUseId"]
        try:
            args = self._arguments(tool_use.get("input"))
        except _BadArgumentsError as exc:
            return error_result(tool_use_id, f"Tool {self.name!r} was called wrongly: {exc}.")
        limit = self.timeout if self.timeout is not None else default_timeout
        try:
            async with asyncio.timeout(limit):
                func = typing.cast(Callable[..., Any], self.func)
                if self._is_async:
                    value = await typing.cast(Awaitable[Any], func(**args))
                else:
                    value = await asyncio.to_thread(func, **args)
        except TimeoutError:
            return error_result(
                tool_use_id, f"Tool {self.name!r} did not finish within {limit:g} s."
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return error_result(
                tool_use_id, f"Tool {self.name!r} failed: {type(exc).__name__}: {exc}"
            )
        result = success_result(tool_use_id, value)
        if result["status"] == "error":  # the value itself could not be sent
            logger.warning("Tool %r: %s", self.name, tool_result_text(result))
        return result


class _BadArgumentsError(ValueError):
    pass


# ---------------------------------------------------------------- decorator


@overload
def tool[**P, R](func: Callable[P, R], /) -> AgentTool[P, R]: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[P, R]], AgentTool[P, R]]: ...


def tool[**P, R](
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> AgentTool[P, R] | Callable[[Callable[P, R]], AgentTool[P, R]]:
    """Make *func* a tool; use bare (``@tool``) or with options (``@tool(timeout=5)``).

    Args:
        func: A sync or async function with type-annotated parameters.
        name: The tool name (default: the function's name).
        description: What the tool does (default: the docstring's text before ``Args:``).
        timeout: Seconds a call may take (default: the agent's ``tool_timeout``).

    Returns:
        An :class:`AgentTool`: callable like *func*, with ``.tool_spec``.

    Raises:
        ToolError: The name is invalid or a parameter type has no JSON schema.
    """

    def wrap(f: Callable[P, R]) -> AgentTool[P, R]:
        return AgentTool(f, name=name, description=description, timeout=timeout)

    if func is not None:
        return wrap(func)
    return wrap


def to_agent_tool(obj: Any) -> AgentTool[..., Any]:
    """Return *obj* as an :class:`AgentTool` (plain functions are wrapped with :func:`tool`)."""
    if isinstance(obj, AgentTool):
        return obj
    if callable(obj):
        return AgentTool(obj)
    msg = f"A tool must be a function or an @tool-decorated function, got {obj!r}."
    raise ToolError(msg)


# ------------------------------------------------------------------ results


def success_result(tool_use_id: str, value: Any) -> ToolResult:
    """Build a ``"success"`` result: strings as text, anything JSON-able as JSON.

    The result is always strict JSON: a float NaN or infinity becomes the string
    ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (the names Python's ``json`` uses,
    so the model still learns what the tool said), and a value that is not JSON is
    sent as its ``repr`` text. A value nested deeper than
    :data:`~bidi_core._json.MAX_JSON_DEPTH` levels gives an ``"error"`` result
    saying so, since no provider takes it.
    """
    content: list[ToolResultContent]
    if isinstance(value, str):
        content = [{"text": value}]
    else:
        try:
            plain = _plain(value)
        except _TooDeepError:
            return error_result(
                tool_use_id,
                f"The tool returned a value nested deeper than {MAX_JSON_DEPTH} levels, "
                "which cannot be sent to the model; it should return a flatter value.",
            )
        if json_problem(plain) is None:
            content = [{"json": plain}]
        else:
            content = [{"text": _safe_repr(value)}]
    return {"toolUseId": tool_use_id, "status": "success", "content": content}


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ (or one that recurses too deep)
        return f"<{type(value).__name__} object: its repr failed with {type(exc).__name__}>"


def error_result(tool_use_id: str, message: str) -> ToolResult:
    """Build an ``"error"`` result carrying *message*."""
    return {"toolUseId": tool_use_id, "status": "error", "content": [{"text": message}]}


def tool_result_text(result: ToolResult) -> str:
    """Render a result's content as one string (text as is, JSON compactly)."""
    parts = []
    for item in result.get("content", []):
        if "text" in item:
            parts.append(str(item["text"]))
        elif "json" in item:
            parts.append(json.dumps(item["json"], ensure_ascii=False, sort_keys=True))
    return " ".join(parts)


# ------------------------------------------------------------------ schemas


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else type(func).__call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        msg = f"Cannot read the type hints of {func!r}: {exc}."
        raise ToolError(msg) from exc


def json_schema(hint: Any) -> dict[str, Any]:
    """Return the JSON schema of a Python type hint.

    Raises:
        ToolError: The type has no JSON representation (e.g. ``bytes``, a plain class).
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return {}
    if origin is typing.Annotated:
        schema = json_schema(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": " ".join(notes)} if notes else schema
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        nullable = len(options) < len(args)
        if len(options) == 1:
            schema = json_schema(options[0])
            if nullable:
                return {"anyOf": [schema, {"type": "null"}]} if schema else {}
            return schema
        schemas = [json_schema(a) for a in options]
        if nullable:
            schemas.append({"type": "null"})
        return {"anyOf": schemas}
    if origin is Literal:
        values = list(args)
        return {**_type_of_values(values), "enum": values}
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        return {**_type_of_values(values), "enum": values}
    if hint in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {
                "type": "array",
                "prefixItems": [json_schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        item = json_schema(args[0]) if args else {}
        return {"type": "array", "items": item} if item else {"type": "array"}
    if hint is dict or origin in (dict, Mapping):
        value = json_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        required = sorted(getattr(hint, "__required_keys__", set(hints)))
        schema = {
            "type": "object",
            "properties": {k: json_schema(v) for k, v in hints.items()},
            "required": [k for k in hints if k in required],
            "additionalProperties": False,
        }
        return _with_doc(schema, hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint, include_extras=True)
        props: dict[str, Any] = {}
        req: list[str] = []
        for field in dataclasses.fields(hint):
            props[field.name] = json_schema(hints.get(field.name, Any))
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                req.append(field.name)
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        if req:
            schema["required"] = req
        return _with_doc(schema, hint)
    msg = (
        f"type {hint!r} has no JSON schema; use str, int, float, bool, Literal, Enum, "
        "list, dict, Optional, a TypedDict or a dataclass."
    )
    raise ToolError(msg)


def _with_doc(schema: dict[str, Any], cls: type) -> dict[str, Any]:
    doc = inspect.getdoc(cls)
    if doc and not doc.startswith(cls.__name__ + "("):  # skip dataclasses' generated signature
        schema["description"] = doc.split("\n\n")[0].strip()
    return schema


def _type_of_values(values: list[Any]) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if len(kinds) == 1 and (kind := next(iter(kinds))) in names:
        return {"type": names[kind]}
    return {}


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and ``Args:`` entries."""
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = _SECTION_RE.match(stripped)
        if header and not line.startswith((" ", "\t")):
            section = header.group(1)
            current = None
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            entry = re.match(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if entry and (len(line) - len(line.lstrip())) <= 4:
                current = entry.group(1)
                args[current] = entry.group(2).strip()
            elif current and stripped:
                args[current] = (args[current] + " " + stripped).strip()
    return "\n".join(description).strip(), args


def _jsonable(value: Any) -> bool:
    try:
        return json_problem(_plain(value)) is None
    except _TooDeepError:
        return False


class _TooDeepError(ValueError):
    pass


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _plain(value: Any, depth: int = 0) -> Any:
    """Turn enums, dataclasses, tuples and non-finite floats into JSON values.

    Raises:
        _TooDeepError: *value* nests deeper than MAX_JSON_DEPTH (stops long
            before Python's recursion limit).
    """
    if depth > MAX_JSON_DEPTH:
        msg = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise _TooDeepError(msg)
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE.get(value, "NaN")
    if isinstance(value, enum.Enum):
        return _plain(value.value, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    return value


def _convert(hint: Any, value: Any) -> Any:
    """Convert a JSON value to *hint* where JSON cannot say it (Enum, dataclass, tuple)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _convert(args[0], value)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(option, value)
            except (TypeError, ValueError):
                continue
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, Mapping):
        hints = typing.get_type_hints(hint)
        return hint(**{k: _convert(hints.get(k, Any), v) for k, v in value.items()})
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        item = args[0] if args else Any
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=False))
        converted = [_convert(item, v) for v in value]
        return origin(converted) if origin is not list else converted
    return value
