"""@tool: JSON schemas from signatures and docstrings, and invoking tools safely."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import threading
from typing import Annotated, Any, Literal, TypedDict

import pytest

from bidi_core import ToolError
from bidi_core.tools import AgentTool, json_schema, tool, tool_result_text


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


class Place(TypedDict):
    """A place on earth."""

    city: str
    country: str


@dataclasses.dataclass
class Window:
    """A time window."""

    start: int
    end: int = 10


def test_schema_covers_every_supported_type() -> None:
    """Each supported Python type maps to the JSON schema a model expects."""

    @tool
    def everything(
        *,
        s: str,
        i: int,
        f: float,
        b: bool,
        lit: Literal["a", "b"],
        unit: Unit,
        names: list[str],
        scores: dict[str, int],
        maybe: int | None,
        place: Place,
        window: Window,
        anything: Any = None,
        pair: tuple[int, str] = (1, "x"),
    ) -> str:
        """Do everything."""
        return "ok"

    props = everything.tool_spec["inputSchema"]["json"]["properties"]
    assert props["s"] == {"type": "string"}
    assert props["i"] == {"type": "integer"}
    assert props["f"] == {"type": "number"}
    assert props["b"] == {"type": "boolean"}
    assert props["lit"] == {"type": "string", "enum": ["a", "b"]}
    assert props["unit"] == {"type": "string", "enum": ["c", "f"]}
    assert props["names"] == {"type": "array", "items": {"type": "string"}}
    assert props["scores"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["place"]["properties"] == {
        "city": {"type": "string"},
        "country": {"type": "string"},
    }
    assert props["place"]["required"] == ["city", "country"]
    assert props["place"]["description"] == "A place on earth."
    assert props["window"]["required"] == ["start"]
    assert props["window"]["properties"]["end"] == {"type": "integer"}
    assert props["anything"] == {"default": None}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    required = everything.tool_spec["inputSchema"]["json"]["required"]
    assert required == [
        "s",
        "i",
        "f",
        "b",
        "lit",
        "unit",
        "names",
        "scores",
        "maybe",
        "place",
        "window",
    ]


def test_descriptions_come_from_the_google_docstring() -> None:
    """The summary becomes the description and Args: entries describe the parameters."""

    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        """Get the current weather.

        Looks it up in the sky.

        Args:
            city: The city, e.g. "Paris". Any city
                on earth.
            unit (str): Temperature unit.

        Returns:
            The weather.
        """
        return city

    spec = get_weather.tool_spec
    assert spec["name"] == "get_weather"
    assert spec["description"] == "Get the current weather.\n\nLooks it up in the sky."
    props = spec["inputSchema"]["json"]["properties"]
    assert props["city"]["description"] == 'The city, e.g. "Paris". Any city on earth.'
    assert props["unit"] == {
        "type": "string",
        "enum": ["c", "f"],
        "description": "Temperature unit.",
        "default": "c",
    }
    assert spec["inputSchema"]["json"]["required"] == ["city"]


def test_options_override_name_description_and_annotated_notes() -> None:
    """@tool(name=, description=) and Annotated[..., "note"] shape the spec."""

    @tool(name="lookup", description="Find a thing.", timeout=2)
    def find(query: Annotated[str, "What to find."]) -> str:
        return query

    assert find.tool_spec["name"] == "lookup"
    assert find.tool_spec["description"] == "Find a thing."
    assert find.timeout == 2
    assert find.tool_spec["inputSchema"]["json"]["properties"]["query"] == {
        "type": "string",
        "description": "What to find.",
    }


def test_decorated_function_stays_callable() -> None:
    """A tool is still the plain function for direct calls."""

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert add(2, 3) == 5
    assert isinstance(add, AgentTool)
    assert add.__name__ == "add"


def test_unsupported_type_and_bad_name_are_clear_errors() -> None:
    """A type without a JSON schema or an invalid name raises ToolError saying what to use."""
    with pytest.raises(ToolError, match=r"parameter 'data'.*no JSON schema"):

        @tool
        def upload(data: bytes) -> None:
            """Upload."""

    with pytest.raises(ToolError, match="not valid"):
        tool(name="has space")(lambda: None)
    with pytest.raises(ToolError, match=r"timeout must be a number of seconds > 0"):
        tool(name="ok", timeout=0)(lambda: None)
    with pytest.raises(ToolError, match=r"timeout must be a number of seconds > 0.*got nan"):
        tool(name="ok", timeout=float("nan"))(lambda: None)


def test_json_schema_rejects_plain_classes() -> None:
    """A plain class has no schema: the error names the supported types."""

    class Thing:
        pass

    with pytest.raises(ToolError, match="TypedDict or a dataclass"):
        json_schema(Thing)


async def test_invoke_converts_arguments_and_results() -> None:
    """Enum and dataclass arguments are rebuilt from JSON; results become text or JSON."""

    @tool
    def plan(unit: Unit, window: Window, tags: tuple[str, ...] = ()) -> dict[str, Any]:
        """Plan."""
        assert isinstance(unit, Unit)
        assert isinstance(window, Window)
        assert isinstance(tags, tuple)
        return {"unit": unit, "span": window.end - window.start, "tags": tags}

    result = await plan.invoke(
        {
            "toolUseId": "t1",
            "name": "plan",
            "input": {"unit": "f", "window": {"start": 3}, "tags": ["x"]},
        }
    )
    assert result == {
        "toolUseId": "t1",
        "status": "success",
        "content": [{"json": {"unit": "f", "span": 7, "tags": ["x"]}}],
    }

    @tool
    def hello(name: str) -> str:
        """Greet."""
        return f"hi {name}"

    text = await hello.invoke({"toolUseId": "t2", "name": "hello", "input": '{"name": "Ann"}'})
    assert text["content"] == [{"text": "hi Ann"}]
    assert tool_result_text(result) == '{"span": 7, "tags": ["x"], "unit": "f"}'


async def test_bad_arguments_become_error_results() -> None:
    """Missing, unknown or non-JSON arguments give an error result, never an exception."""

    @tool
    def hello(name: str) -> str:
        """Greet."""
        return name

    missing = await hello.invoke({"toolUseId": "a", "name": "hello", "input": {}})
    assert missing["status"] == "error"
    assert "missing required argument(s) 'name'" in tool_result_text(missing)
    unknown = await hello.invoke(
        {"toolUseId": "b", "name": "hello", "input": {"name": "x", "age": 3}}
    )
    assert "unknown argument(s) 'age'" in tool_result_text(unknown)
    garbage = await hello.invoke({"toolUseId": "c", "name": "hello", "input": "{nope"})
    assert "not valid JSON" in tool_result_text(garbage)


async def test_exceptions_and_timeouts_become_error_results() -> None:
    """A raising tool and a tool over its timeout both yield an error result with the reason."""

    @tool
    def broken() -> str:
        """Break."""
        raise ValueError("the sky fell")

    @tool(timeout=0.05)
    async def slow() -> str:
        """Sleep."""
        await asyncio.sleep(5)
        return "late"

    failed = await broken.invoke({"toolUseId": "x", "name": "broken", "input": {}})
    assert failed["status"] == "error"
    assert tool_result_text(failed) == "Tool 'broken' failed: ValueError: the sky fell"
    late = await slow.invoke({"toolUseId": "y", "name": "slow", "input": {}})
    assert late["status"] == "error"
    assert "did not finish within 0.05 s" in tool_result_text(late)


async def test_sync_tools_run_off_the_event_loop() -> None:
    """A blocking sync tool runs in a worker thread, so the loop keeps running."""
    loop_thread = threading.get_ident()
    seen: list[int] = []
    release = threading.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    @tool
    def blocking() -> str:
        """Block until released."""
        seen.append(threading.get_ident())
        loop.call_soon_threadsafe(started.set)
        release.wait(5)
        return "done"

    task = asyncio.create_task(blocking.invoke({"toolUseId": "z", "name": "blocking", "input": {}}))
    await started.wait()  # reachable only because the loop is free while the tool blocks
    release.set()
    result = await task
    assert result["content"] == [{"text": "done"}]
    assert seen[0] != loop_thread
