"""The example service's wire format <-> bidi events, as pure functions (no I/O).

The example service speaks JSON lines over TCP (one JSON object per line, each with a
``type``). Replace this module with your provider's real frames; keep it pure so it
can be unit-tested with scripted frames.

Client -> server:

* ``session.start``: ``model``, ``api_key``, ``instructions``, ``tools``, ``history``,
  ``voice``, ``resume_handle`` (first frame of every connection)
* ``input.text``: ``text``
* ``input.audio``: ``audio`` (base64 PCM16 mono), ``sample_rate``
* ``tool.result``: ``tool_use_id``, ``status``, ``content``
* ``session.end``: graceful goodbye

Server -> client:

* ``session.ready``: ``session_id`` (answer to ``session.start``)
* ``response.start`` / ``response.done``: ``response_id`` (+ ``stop_reason``)
* ``transcript``: ``role``, ``item_id``, ``text``, ``final``
* ``audio``: ``response_id``, ``audio`` (base64 PCM16 mono at 24 kHz)
* ``tool.call``: ``tool_use_id``, ``name``, ``input``; ``tool.cancel``: ``tool_use_ids``
* ``usage``: ``input_tokens``, ``output_tokens``, ``input_details``, ``output_details``
  (incremental, per response)
* ``interrupted``: ``response_id`` (the user barged in)
* ``session.handle``: ``handle`` (resume a later connection with it)
* ``session.expired``: ``message`` (the connection time limit was reached)
* ``error``: ``code``, ``message``, ``fatal``
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    Messages,
    ProviderProtocolError,
    ToolResultEvent,
    ToolSpec,
    ToolUseStreamEvent,
)
from bidi_core import _json as strict_json

__all__ = ["OUTPUT_SAMPLE_RATE", "decode", "encode", "from_server", "session_start", "to_server"]

#: The rate of the service's output audio.
OUTPUT_SAMPLE_RATE = 24000
_STOP_REASONS = ("complete", "interrupted", "tool_use", "error")


def encode(frame: dict[str, Any]) -> bytes:
    """Return *frame* as one line of JSON."""
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line from the service.

    Raises:
        ProviderProtocolError: The line is not a JSON object with a str ``type``.
    """
    try:
        frame = strict_json.loads(line)  # refuses NaN, which Python's json reads
    except ValueError as exc:
        msg = f"The example service sent a line that is not JSON: {line[:80]!r}."
        raise ProviderProtocolError(msg, provider="example") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        msg = f"The example service sent a frame without a 'type': {line[:80]!r}."
        raise ProviderProtocolError(msg, provider="example")
    return frame


def session_start(
    *,
    model_id: str,
    api_key: str,
    system_prompt: str | None,
    tools: list[ToolSpec],
    messages: Messages,
    voice: str | None,
    resume_handle: str | None,
) -> dict[str, Any]:
    """Return the first frame of a connection."""
    return {
        "type": "session.start",
        "model": model_id,
        "api_key": api_key,
        "instructions": system_prompt,
        "tools": list(tools),
        "history": list(messages),
        "voice": voice,
        "resume_handle": resume_handle,
    }


def to_server(event: BidiInputEvent | ToolResultEvent) -> dict[str, Any]:
    """Return the frame for one input event (already checked and resampled by the core).

    Raises:
        TypeError: The service has no frame for this event (capabilities exclude it).
    """
    if isinstance(event, BidiTextInputEvent):
        return {"type": "input.text", "text": event.text}
    if isinstance(event, BidiAudioInputEvent):
        audio = base64.b64encode(event.audio).decode("ascii")
        return {"type": "input.audio", "audio": audio, "sample_rate": event.sample_rate}
    if isinstance(event, ToolResultEvent):
        result = event.tool_result
        return {
            "type": "tool.result",
            "tool_use_id": result["toolUseId"],
            "status": result["status"],
            "content": list(result["content"]),
        }
    msg = f"The example service has no frame for {type(event).__name__}."
    raise TypeError(msg)


def _get(frame: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = frame.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        msg = f"The example service sent a {frame['type']!r} frame with a bad {key!r}: {value!r}."
        raise ProviderProtocolError(msg, provider="example")
    return value


def from_server(frame: dict[str, Any]) -> list[BidiOutputEvent]:
    """Map one server frame to bidi events (every piece of content, nothing dropped).

    Session frames (``session.*``) and fatal errors change the connection's state;
    the model handles them before calling this.

    Raises:
        ProviderProtocolError: The frame is unknown or has a missing or mistyped field.
    """
    try:
        return _events(frame)
    except (TypeError, ValueError) as exc:
        # Events check their own fields: a value they refuse is the service's mistake.
        msg = f"The example service sent a {frame.get('type')!r} frame with a bad value: {exc}"
        raise ProviderProtocolError(msg, provider="example") from exc


def _events(frame: dict[str, Any]) -> list[BidiOutputEvent]:
    kind = frame["type"]
    if kind == "response.start":
        return [BidiResponseStartEvent(response_id=_get(frame, "response_id", str))]
    if kind == "response.done":
        reason = frame.get("stop_reason")
        if reason not in _STOP_REASONS:
            msg = f"The example service sent an unknown stop_reason {reason!r}."
            raise ProviderProtocolError(msg, provider="example")
        return [
            BidiResponseCompleteEvent(
                response_id=_get(frame, "response_id", str), stop_reason=reason
            )
        ]
    if kind == "transcript":
        final = _get(frame, "final", bool)
        text = _get(frame, "text", str)
        return [
            BidiTranscriptStreamEvent(
                role=_get(frame, "role", str),
                text=text,
                is_final=final,
                current_transcript=text if final else None,
                item_id=_get(frame, "item_id", str),
            )
        ]
    if kind == "audio":
        try:
            audio = base64.b64decode(_get(frame, "audio", str), validate=True)
        except binascii.Error as exc:
            msg = "The example service sent audio that is not valid base64."
            raise ProviderProtocolError(msg, provider="example") from exc
        return [
            BidiAudioStreamEvent(
                audio=audio,
                sample_rate=OUTPUT_SAMPLE_RATE,
                response_id=_get(frame, "response_id", str),
            )
        ]
    if kind == "tool.call":
        tool_use = {
            "toolUseId": _get(frame, "tool_use_id", str),
            "name": _get(frame, "name", str),
            "input": _get(frame, "input", dict),
        }
        return [ToolUseStreamEvent(tool_use=tool_use)]  # type: ignore[arg-type]
    if kind == "tool.cancel":
        ids = _get(frame, "tool_use_ids", list)
        return [BidiToolCancelEvent(tool_use_ids=[str(i) for i in ids])]
    if kind == "usage":
        inputs = _get(frame, "input_tokens", int)
        outputs = _get(frame, "output_tokens", int)
        return [
            BidiUsageEvent(
                input_tokens=inputs,
                output_tokens=outputs,
                total_tokens=inputs + outputs,
                input_details=_get(frame, "input_details", dict),
                output_details=_get(frame, "output_details", dict),
            )
        ]
    if kind == "interrupted":
        return [BidiInterruptionEvent(response_id=_get(frame, "response_id", str))]
    if kind == "error":
        return [
            BidiErrorEvent(
                message=_get(frame, "message", str),
                code=_get(frame, "code", str),
                recoverable=True,
            )
        ]
    msg = f"The example service sent an unknown frame type {kind!r}."
    raise ProviderProtocolError(msg, provider="example")
