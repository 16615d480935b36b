"""The JSON/base64 helper: the fast path (when installed) and the stdlib agree exactly."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import enum
import json
import math
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidi_core import _fastcodec as codec

FAST = codec._fast_functions()
STD = {
    "loads": codec._std_loads,
    "dumps": codec._std_encode,
    "dumpb": codec._std_dumpb,
    "b64encode": codec._std_b64encode,
    "b64decode": codec._std_b64decode,
}
needs_fast = pytest.mark.skipif(
    FAST is None, reason="the fast libraries are not installed (or BIDI_NO_FAST=1)"
)


def outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    """What *fn* does with *args*: its result's repr (types and NaN included) or its error."""
    try:
        result = fn(*args)
    except Exception as exc:  # compared, not swallowed
        return ("raised", type(exc), str(exc))
    return ("returned", type(result), repr(result))


def same(name: str, *args: Any) -> None:
    assert FAST is not None
    assert outcome(FAST[name], *args) == outcome(STD[name], *args)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x2FFF))
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


class Text(str):
    pass


odd_values = st.sampled_from(
    [
        uuid.UUID(int=7),
        Color.RED,
        Level.HIGH,
        Point(1),
        datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
        datetime.date(2026, 1, 2),
        b"bytes",
        {1, 2},
        {1: "int key"},
        {None: "none key"},
        {(1, 2): "tuple key"},
        Text("a str subclass"),
        float("nan"),
        float("-inf"),
        "\ud800 lone surrogate",
        2**64,
        -(2**63) - 1,
        object(),
    ]
)


# --------------------------------------------------------------------- the contract


def test_loads_refuses_nan_and_infinity_literals() -> None:
    """NaN and Infinity are not JSON: loads() raises ValueError, whichever path runs."""
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError, match="not valid JSON"):
            codec.loads(text)


def test_loads_keeps_big_integers_exact() -> None:
    """An integer beyond 64 bits is read exactly, not rounded to a float."""
    assert codec.loads(b'{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890
    }


def test_loads_reads_bytes_str_and_bytearray() -> None:
    """loads() takes str, bytes and bytearray (UTF-8), and refuses other types."""
    for data in (
        '{"é": [1, 2.5]}',
        '{"é": [1, 2.5]}'.encode(),
        bytearray('{"é": [1, 2.5]}'.encode()),
    ):
        assert codec.loads(data) == {"é": [1, 2.5]}
    with pytest.raises(TypeError):
        codec.loads(123)  # type: ignore[arg-type]


def test_dumps_is_compact_utf8_and_refuses_nan() -> None:
    """dumps() writes compact JSON with non-ASCII as is; NaN and infinity raise ValueError."""
    assert codec.dumps({"a": [1, "é", None, True, 0.5]}) == '{"a":[1,"é",null,true,0.5]}'
    assert codec.dumpb({"a": "é"}) == '{"a":"é"}'.encode()
    for bad in (float("nan"), {"x": float("inf")}, [float("-inf")]):
        with pytest.raises(ValueError, match="Out of range float"):
            codec.dumps(bad)
    with pytest.raises(TypeError):
        codec.dumps({"x": b"bytes"})


def test_base64_round_trips_and_decodes_strictly() -> None:
    """b64encode() gives text; b64decode() refuses what base64.b64decode(validate=True) refuses."""
    pcm = bytes(range(256)) * 4
    text = codec.b64encode(pcm)
    assert isinstance(text, str)
    assert text == base64.b64encode(pcm).decode("ascii")
    assert codec.b64decode(text) == pcm
    assert codec.b64decode(text.encode()) == pcm
    for bad in ("QQ", "Q Q==", "QQ==\n", "QQ==QQ==", "====", "a-b_"):
        with pytest.raises(binascii.Error):
            codec.b64decode(bad)
    with pytest.raises(ValueError, match="only ASCII"):
        codec.b64decode("é")


def test_bidi_no_fast_turns_the_fast_path_off() -> None:
    """BIDI_NO_FAST=1, read at import, makes the helper use the stdlib."""
    code = "import bidi_core._fastcodec as c; print(c.BACKEND, c.FAST)"
    env = {**os.environ, "BIDI_NO_FAST": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["stdlib", "False"]


@needs_fast
def test_the_fast_path_is_in_use_when_installed() -> None:
    """With msgspec, orjson and pybase64 installed (and no BIDI_NO_FAST) they do the work."""
    assert codec.FAST
    assert codec.BACKEND == "msgspec+orjson+pybase64"
    assert codec.loads.__name__ == "fast_loads"
    assert codec.b64decode.__name__ == "fast_b64decode"


# ------------------------------------------------------------ fast == stdlib, always

fuzz = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@needs_fast
@fuzz
@given(json_values)
def test_dumps_agrees(value: Any) -> None:
    """dumps() and dumpb() give the stdlib's exact bytes (or its exact error) for JSON data."""
    same("dumps", value)
    same("dumpb", value)


@needs_fast
@fuzz
@given(st.lists(st.floats(min_value=-1e-3, max_value=1e-3) | st.floats(), max_size=4))
def test_dumps_agrees_on_floats(values: list[float]) -> None:
    """Floats of every size (orjson spells those below 1e-4 unlike repr) come out the same."""
    same("dumps", values)
    same("dumps", {"x": values, "y": [1e-5, 2.5e-7, -1e-100, 1e16, 0.1]})


@needs_fast
@fuzz
@given(
    st.recursive(
        odd_values | json_scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=6,
    )
)
def test_dumps_agrees_on_what_json_cannot_hold(value: Any) -> None:
    """UUIDs, enums, dataclasses, dates, bytes, sets, odd keys, NaN, huge ints: as the stdlib."""
    same("dumps", value)
    same("dumpb", value)


@needs_fast
@fuzz
@given(json_values, st.sampled_from(["", " ", "\n", "\t", "\r\n  "]))
def test_loads_agrees_on_json_text(value: Any, space: str) -> None:
    """loads() reads what the stdlib wrote (any spacing) exactly as the stdlib reads it."""
    try:
        text = json.dumps(value, indent=space or None)
    except (ValueError, TypeError):
        return
    same("loads", text)
    same("loads", text.encode())
    same("loads", f"{space}{text}{space}")


@needs_fast
@fuzz
@given(
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)
)
def test_loads_agrees_on_numbers(text: str) -> None:
    """Every JSON number (long, tiny, huge, beyond a double) is read as the stdlib reads it."""
    same("loads", text)
    same("loads", f"[{text}]")


@needs_fast
@fuzz
@given(st.text(max_size=40) | st.binary(max_size=40).map(bytes))
def test_loads_agrees_on_anything(data: Any) -> None:
    """Arbitrary text and bytes: the same value, or the stdlib's own exception and message."""
    same("loads", data)


@needs_fast
@fuzz
@given(
    json_values,
    st.integers(min_value=0, max_value=200),
    st.sampled_from(list('",:[]{}\\\x00\x1fe-.0NaI\ufeff')),
)
def test_loads_agrees_on_broken_json(value: Any, at: int, char: str) -> None:
    """JSON with one character inserted: the same value or the stdlib's exception."""
    try:
        text = json.dumps(value)
    except (ValueError, TypeError):
        return
    at %= len(text) + 1
    same("loads", text[:at] + char + text[at:])
    same("loads", (text[:at] + char + text[at:]).encode("utf-8", "surrogatepass"))


@needs_fast
@fuzz
@given(st.binary(max_size=3000))
def test_b64encode_agrees(data: bytes) -> None:
    """b64encode() gives the stdlib's text for bytes, bytearray and memoryview."""
    same("b64encode", data)
    same("b64encode", bytearray(data))
    same("b64encode", memoryview(data))


@needs_fast
@fuzz
@given(
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())
    | st.text(alphabet="ABCQRSabcz09+/=", max_size=24)
    | st.text(alphabet="ABQ=+/ \n-_é\x00", max_size=12)
)
def test_b64decode_agrees(text: str) -> None:
    """b64decode() gives the stdlib's bytes, or its exception, for valid and broken base64."""
    same("b64decode", text)
    if text.isascii():
        same("b64decode", text.encode())


@needs_fast
def test_b64decode_and_encode_agree_on_wrong_types() -> None:
    """Non-bytes input raises the stdlib's TypeError on both paths."""
    for value in (None, 12, ["QQ=="]):
        same("b64decode", value)
        same("b64encode", value)
    same("b64encode", "text")


def test_nan_check_sees_nested_values() -> None:
    """The fast path's float check finds NaN, infinities and tiny floats at any depth."""
    assert codec._same_in_orjson({"a": [1, {"b": 0.5}]})
    assert not codec._same_in_orjson({"a": [1, {"b": float("nan")}]})
    assert not codec._same_in_orjson([[math.inf]])
    assert not codec._same_in_orjson({"a": (1e-7,)})
