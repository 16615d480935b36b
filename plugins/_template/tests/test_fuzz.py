"""Fuzzing the example service's frame decoder: garbage gives typed errors, never a crash.

Copy this for your provider: seed it with real frames of every type your decoder reads.
The ``ci`` hypothesis profile runs 100 examples; ``HYPOTHESIS_PROFILE=thorough`` 1,000.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given

from bidi_core import BidiOutputEvent
from bidi_core.testing.fuzz import check_decoder, frame_sequences
from bidi_example import _wire

VALID: list[dict[str, Any]] = [
    {"type": "response.start", "response_id": "r1"},
    {"type": "transcript", "role": "assistant", "item_id": "i1", "text": "Hi", "final": False},
    {"type": "audio", "response_id": "r1", "audio": base64.b64encode(b"\x01\x00" * 8).decode()},
    {"type": "tool.call", "tool_use_id": "t1", "name": "f", "input": {"a": 1}},
    {"type": "tool.cancel", "tool_use_ids": ["t1"]},
    {
        "type": "usage",
        "input_tokens": 1,
        "output_tokens": 2,
        "input_details": {"text": 1, "audio": 0},
        "output_details": {"text": 1, "audio": 1},
    },
    {"type": "interrupted", "response_id": "r1"},
    {"type": "error", "code": "c", "message": "m", "fatal": False},
    {"type": "response.done", "response_id": "r1", "stop_reason": "complete"},
]


def _line(frame: Any) -> bytes:
    return json.dumps(frame).encode() + b"\n"


def decode(line: bytes) -> list[BidiOutputEvent]:
    """What the model does with one line (session frames aside)."""
    frame = _wire.decode(line)
    if str(frame["type"]).startswith("session."):
        return []
    return _wire.from_server(frame)


@given(lines=frame_sequences(VALID, encode=_line))
def test_decoder_survives_garbage_lines(lines: list[bytes]) -> None:
    """Random bytes, random JSON and mutated or truncated frames give a ProviderProtocolError."""
    for line in lines:
        check_decoder(decode, line)
