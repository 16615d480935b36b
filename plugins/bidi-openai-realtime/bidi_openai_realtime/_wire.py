"""OpenAI Realtime (GA) JSON <-> bidi events, as pure code (no I/O, no clock).

* Client events are built by small functions (:func:`session_update`,
  :func:`audio_append`, :func:`text_item`, ...), each returning the JSON-ready dict.
* Server events are translated by :class:`Decoder`, which keeps the little state
  the GA protocol needs (which response is active, transcripts so far, how much
  audio each assistant item has) and returns every bidi event a frame carries.
* :class:`ResponseGate` decides when a ``response.create`` may be sent, so the
  connection never has two active responses and all tool results of one
  response trigger exactly one ``response.create``.

Only GA event names are produced or understood; beta names
(``response.audio.delta`` ...) are reported as errors, never mapped.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from bidi_core import _json as strict_json
from bidi_core.events import (
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    StopReason,
    ToolUseStreamEvent,
)
from bidi_core.types import ContentBlock, Messages, ToolResult, ToolSpec

__all__ = [
    "BETA_EVENT_TYPES",
    "IGNORED_SERVER_EVENTS",
    "SAMPLE_RATE",
    "Decoded",
    "Decoder",
    "ResponseGate",
    "TruncationPlan",
    "audio_append",
    "audio_commit",
    "decode_frame",
    "delete_item",
    "event_id",
    "history_items",
    "image_item",
    "plan_truncation",
    "response_create",
    "session_update",
    "text_item",
    "tool_output_item",
    "tool_result_output",
    "tool_spec",
    "truncate_item",
]

#: The only PCM rate of GA ``audio/pcm`` (input and output).
SAMPLE_RATE = 24000

#: Beta (``OpenAI-Beta: realtime=v1``) server event names, renamed in GA.
BETA_EVENT_TYPES = frozenset(
    {
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
        "conversation.item.created",
    }
)

#: GA server events that carry nothing a bidi event needs, and why.
IGNORED_SERVER_EVENTS: Mapping[str, str] = {
    "session.created": "handshake; the plugin waits for it in start()",
    "session.updated": "acknowledges session.update; start() waits for it",
    "conversation.created": "no content",
    "conversation.item.added": "item bookkeeping; content arrives as deltas",
    "conversation.item.done": "item bookkeeping; content arrives as deltas",
    "conversation.item.retrieved": "answer to conversation.item.retrieve, which bidi never sends",
    "conversation.item.truncated": "acknowledges truncate()",
    "conversation.item.deleted": "acknowledges truncate() at 0 ms",
    "conversation.item.input_audio_transcription.segment": (
        "diarized segments; the completed transcript carries the same text"
    ),
    "input_audio_buffer.speech_stopped": "the transcript and the response follow",
    "input_audio_buffer.committed": "the transcript and the response follow",
    "input_audio_buffer.cleared": "acknowledges input_audio_buffer.clear",
    "input_audio_buffer.timeout_triggered": "server_vad idle timeout; a response follows",
    "input_audio_buffer.dtmf_event_received": "SIP keypad tones; no bidi event exists",
    "response.output_item.added": "item bookkeeping; function calls come with .done",
    "response.content_part.added": "the deltas carry the content",
    "response.content_part.done": "the .done of the transcript/text carries the content",
    "response.output_audio.done": "end of audio; response.done follows",
    "response.function_call_arguments.delta": "partial JSON; the .done event has it all",
    "rate_limits.updated": "account rate limits, not conversation events",
    "output_audio_buffer.started": "WebRTC/SIP only",
    "output_audio_buffer.stopped": "WebRTC/SIP only",
    "output_audio_buffer.cleared": "WebRTC/SIP only",
    "mcp_list_tools.in_progress": "server-side MCP tools run inside OpenAI",
    "mcp_list_tools.completed": "server-side MCP tools run inside OpenAI",
    "mcp_list_tools.failed": "server-side MCP tools run inside OpenAI",
    "response.mcp_call_arguments.delta": "server-side MCP tools run inside OpenAI",
    "response.mcp_call_arguments.done": "server-side MCP tools run inside OpenAI",
    "response.mcp_call.in_progress": "server-side MCP tools run inside OpenAI",
    "response.mcp_call.completed": "server-side MCP tools run inside OpenAI",
    "response.mcp_call.failed": "server-side MCP tools run inside OpenAI",
}

_PCM_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": SAMPLE_RATE}


# A random per-process prefix and a counter: unique like a uuid4, without reading
# os.urandom for each of the 50 audio appends a second.
_ID_PREFIX = f"evt_{uuid.uuid4().hex[:10]}_"
_ID_COUNTER = itertools.count(1)


def event_id() -> str:
    """Return a fresh client ``event_id`` (errors about the event echo it)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


# ------------------------------------------------------------- client events


def tool_spec(spec: ToolSpec) -> dict[str, Any]:
    """Return the GA ``function`` tool for a bidi :class:`~bidi_core.ToolSpec`."""
    schema = spec.get("inputSchema", {}).get("json") or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec.get("description", ""),
        "parameters": schema,
    }


def session_update(session: Mapping[str, Any], *, eid: str | None = None) -> dict[str, Any]:
    """Return ``session.update`` for a complete GA session object."""
    return {"type": "session.update", "event_id": eid or event_id(), "session": dict(session)}


def audio_append(pcm: bytes) -> dict[str, Any]:
    """Return ``input_audio_buffer.append`` for PCM16 mono 24 kHz audio."""
    return {
        "type": "input_audio_buffer.append",
        "event_id": event_id(),
        "audio": base64.b64encode(pcm).decode("ascii"),
    }


def audio_append_frame(pcm: bytes) -> str:
    """Return :func:`audio_append` already encoded as the compact JSON text frame.

    The hot send path: base64 and the event id never need JSON escaping, so the
    frame is assembled directly instead of through :func:`json.dumps`.
    """
    audio = binascii.b2a_base64(pcm, newline=False).decode("ascii")
    return f'{{"type":"input_audio_buffer.append","event_id":"{event_id()}","audio":"{audio}"}}'


def audio_commit() -> dict[str, Any]:
    """Return ``input_audio_buffer.commit`` (only needed without turn detection)."""
    return {"type": "input_audio_buffer.commit", "event_id": event_id()}


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "event_id": event_id(),
        "item": {"type": "message", "role": role, "content": content},
    }


def text_item(text: str, role: str = "user") -> dict[str, Any]:
    """Return ``conversation.item.create`` with a ``user`` (or ``system``) text message."""
    return _message(role, [{"type": "input_text", "text": text}])


def image_item(image: bytes, mime_type: str) -> dict[str, Any]:
    """Return ``conversation.item.create`` with an ``input_image`` (a data URL)."""
    data = base64.b64encode(image).decode("ascii")
    return _message(
        "user", [{"type": "input_image", "image_url": f"data:{mime_type};base64,{data}"}]
    )


def tool_result_output(result: ToolResult) -> str:
    """Return the ``function_call_output.output`` string of a bidi tool result.

    Text items are kept as they are and JSON items are serialized, joined by
    newlines; an ``error`` result is prefixed with ``"Error: "`` so the model
    knows the call failed.
    """
    pieces: list[str] = []
    for item in result.get("content", []):
        if "text" in item:
            pieces.append(str(item["text"]))
        elif "json" in item:
            pieces.append(json.dumps(item["json"], sort_keys=True))
    text = "\n".join(pieces)
    if result.get("status") == "error":
        return f"Error: {text}" if text else "Error"
    return text


def tool_output_item(result: ToolResult) -> dict[str, Any]:
    """Return ``conversation.item.create`` with the ``function_call_output`` of *result*."""
    return {
        "type": "conversation.item.create",
        "event_id": event_id(),
        "item": {
            "type": "function_call_output",
            "call_id": result["toolUseId"],
            "output": tool_result_output(result),
        },
    }


def response_create(eid: str) -> dict[str, Any]:
    """Return ``response.create`` (the session's settings apply)."""
    return {"type": "response.create", "event_id": eid}


def truncate_item(item_id: str, content_index: int, audio_end_ms: int) -> dict[str, Any]:
    """Return ``conversation.item.truncate``: the user heard only ``audio_end_ms``."""
    return {
        "type": "conversation.item.truncate",
        "event_id": event_id(),
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }


def delete_item(item_id: str) -> dict[str, Any]:
    """Return ``conversation.item.delete`` (nothing of the item was heard)."""
    return {"type": "conversation.item.delete", "event_id": event_id(), "item_id": item_id}


def history_items(messages: Messages) -> list[dict[str, Any]]:
    """Return the ``conversation.item.create`` events that replay *messages*.

    User text becomes ``input_text`` messages, assistant text ``output_text``
    messages; a ``toolUse`` block becomes a ``function_call`` item and a
    ``toolResult`` block a ``function_call_output`` item, in order.
    Consecutive text blocks of one message are joined into one item.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        texts: list[str] = []

        def flush(role: str = str(role), texts: list[str] = texts) -> None:
            text = "\n".join(t for t in texts if t)
            texts.clear()
            if not text:
                return
            kind = "input_text" if role == "user" else "output_text"
            out.append(_message(role, [{"type": kind, "text": text}]))

        block: ContentBlock
        for block in message.get("content", []):
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                flush()
                use = block["toolUse"]
                out.append(
                    {
                        "type": "conversation.item.create",
                        "event_id": event_id(),
                        "item": {
                            "type": "function_call",
                            "call_id": use["toolUseId"],
                            "name": use["name"],
                            "arguments": json.dumps(use.get("input") or {}),
                        },
                    }
                )
            elif "toolResult" in block:
                flush()
                out.append(tool_output_item(block["toolResult"]))
        flush()
    return out


# ------------------------------------------------------------- truncation


@attrs.frozen(kw_only=True)
class TruncationPlan:
    """What :meth:`~bidi_openai_realtime.OpenAIRealtimeModel.truncate` sends.

    Attributes:
        action: ``"truncate"`` or ``"delete"`` (nothing was heard).
        item_id: The assistant audio item.
        content_index: The audio content part of the item.
        audio_end_ms: Where to cut (``0`` for delete).
        received_ms: How much audio of the item was received.
    """

    action: Literal["truncate", "delete"]
    item_id: str
    content_index: int
    audio_end_ms: int
    received_ms: int


def plan_truncation(
    item_id: str, content_index: int, received_bytes: int, played_ms: int
) -> TruncationPlan:
    """Clamp *played_ms* to the audio actually received; 0 ms means delete the item."""
    received_ms = received_bytes * 1000 // (2 * SAMPLE_RATE)
    cut = max(0, min(int(played_ms), received_ms))
    return TruncationPlan(
        action="delete" if cut == 0 else "truncate",
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=cut,
        received_ms=received_ms,
    )


# ------------------------------------------------------------- server events


def decode_frame(raw: str | bytes) -> dict[str, Any]:
    """Parse one WebSocket frame into a server event dict.

    Raises:
        ValueError: The frame is not a JSON object with a string ``type``.
    """
    try:
        data = strict_json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"not JSON ({exc})"
        raise ValueError(msg) from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        msg = "not a JSON object with a string 'type'"
        raise ValueError(msg)
    return data


@attrs.define
class _Response:
    response_id: str
    audio_item: str | None = None
    audio_content_index: int = 0
    audio_bytes: int = 0
    first_audio_at: float | None = None
    tool_calls: list[str] = attrs.field(factory=list)
    interrupted: bool = False
    done: bool = False
    cancelled_reason: str | None = None


@attrs.define(kw_only=True)
class Decoded:
    """What one server frame means.

    Attributes:
        events: The bidi events to yield, in order.
        event_type: The frame's ``type``.
        created: A response that started (``response.created``).
        done: A response that ended (``response.done``).
        tool_calls: ``(response_id, call_id)`` of function calls in this frame.
        error_code: The ``error.code`` of an ``error`` frame.
        error_event_id: The client ``event_id`` an ``error`` frame is about.
        expired: The message of a ``session_expired`` error (restart needed).
    """

    events: list[BidiOutputEvent] = attrs.field(factory=list)
    event_type: str = ""
    created: str | None = None
    done: str | None = None
    tool_calls: list[tuple[str, str]] = attrs.field(factory=list)
    error_code: str | None = None
    error_event_id: str | None = None
    expired: str | None = None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _map(value: Any) -> Mapping[str, Any]:
    """*value* if it is an object, else an empty one (a mistyped optional field)."""
    return value if isinstance(value, Mapping) else {}


def usage_event(usage: Mapping[str, Any]) -> BidiUsageEvent:
    """Return the :class:`BidiUsageEvent` of a ``response.done`` ``usage`` object."""
    inp = _map(usage.get("input_token_details"))
    out = _map(usage.get("output_token_details"))
    input_tokens = _int(usage.get("input_tokens"))
    output_tokens = _int(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    return BidiUsageEvent(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=_int(total) if total is not None else input_tokens + output_tokens,
        input_details={
            "text": _int(inp.get("text_tokens")),
            "audio": _int(inp.get("audio_tokens")),
            "image": _int(inp.get("image_tokens")),
        },
        output_details={
            "text": _int(out.get("text_tokens")),
            "audio": _int(out.get("audio_tokens")),
        },
        cached_tokens=_int(inp.get("cached_tokens")),
    )


def _details(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Decoder:
    """Turns GA server events into bidi events (see the module docs).

    Every call of :meth:`feed` gets the current monotonic time, so the decoder
    itself reads no clock: it uses it to tell whether the last response's audio
    may still be playing when the user starts to speak.

    Args:
        max_responses: How many recent responses to remember for truncation.
    """

    def __init__(self, *, max_responses: int = 16) -> None:
        self.active: str | None = None
        self._responses: dict[str, _Response] = {}
        self._max = max_responses
        self._last: str | None = None
        self._transcripts: dict[str, str] = {}
        self._emitted_calls: set[str] = set()
        self._warned: set[str] = set()

    # ------------------------------------------------------------ state

    def response(self, response_id: str) -> _Response | None:
        """The bookkeeping of a recent response, if remembered."""
        return self._responses.get(response_id)

    def truncation(self, response_id: str, played_ms: int) -> TruncationPlan | None:
        """Plan a truncation of *response_id*'s audio; None if it has no audio item."""
        resp = self._responses.get(response_id)
        if resp is None or resp.audio_item is None:
            return None
        return plan_truncation(
            resp.audio_item, resp.audio_content_index, resp.audio_bytes, played_ms
        )

    def forget_audio(self, response_id: str) -> None:
        """Forget the audio item of *response_id* (after it was deleted)."""
        resp = self._responses.get(response_id)
        if resp is not None:
            resp.audio_item = None
            resp.audio_bytes = 0

    def _get(self, response_id: str) -> _Response:
        resp = self._responses.get(response_id)
        if resp is None:
            resp = self._responses[response_id] = _Response(response_id)
            while len(self._responses) > self._max:
                del self._responses[next(iter(self._responses))]
        return resp

    def _playing(self, now: float) -> _Response | None:
        """The last finished response if its audio could still be playing at *now*."""
        if self._last is None:
            return None
        resp = self._responses.get(self._last)
        if resp is None or resp.first_audio_at is None or resp.interrupted:
            return None
        seconds = resp.audio_bytes / (2 * SAMPLE_RATE)
        return resp if now < resp.first_audio_at + seconds else None

    # ------------------------------------------------------------ decode

    def feed_raw(self, raw: str | bytes, now: float) -> Decoded:
        """Decode one frame; a malformed frame gives a recoverable ``BidiErrorEvent``."""
        try:
            event = decode_frame(raw)
        except ValueError as exc:
            preview = raw[:80] if isinstance(raw, str) else repr(raw[:80])
            return Decoded(
                events=[
                    BidiErrorEvent(
                        message=f"OpenAI Realtime sent a malformed frame ({exc}); it was skipped.",
                        code="malformed_frame",
                        recoverable=True,
                        details={"frame": str(preview)},
                    )
                ],
                event_type="",
            )
        return self.feed(event, now)

    def feed(self, event: Mapping[str, Any], now: float) -> Decoded:
        """Decode one server event dict."""
        kind = str(event.get("type", ""))
        handler = _HANDLERS.get(kind)
        if handler is not None:
            try:
                return handler(self, event, now)
            except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
                return Decoded(
                    events=[
                        BidiErrorEvent(
                            message=(
                                f"OpenAI Realtime sent a {kind!r} event this plugin could not "
                                f"read ({type(exc).__name__}: {exc}); it was skipped."
                            ),
                            code="malformed_event",
                            recoverable=True,
                            details={"event_type": kind},
                        )
                    ],
                    event_type=kind,
                )
        if kind in BETA_EVENT_TYPES and kind not in self._warned:
            self._warned.add(kind)
            return Decoded(
                events=[
                    BidiErrorEvent(
                        message=(
                            f"OpenAI Realtime sent the beta event {kind!r}; this plugin speaks "
                            "the GA protocol. Check that no 'OpenAI-Beta' header is sent "
                            "(client_config['headers'])."
                        ),
                        code="beta_protocol",
                        recoverable=True,
                        details={"event_type": kind},
                    )
                ],
                event_type=kind,
            )
        return Decoded(event_type=kind)

    # The handlers below each return a Decoded for one event type.

    def _response_created(self, event: Mapping[str, Any], now: float) -> Decoded:
        response_id = str(event["response"]["id"])
        self._get(response_id)
        self.active = response_id
        return Decoded(
            events=[BidiResponseStartEvent(response_id=response_id)],
            event_type="response.created",
            created=response_id,
        )

    def _audio_delta(self, event: Mapping[str, Any], now: float) -> Decoded:
        # b64decode(validate=True) is exactly a2b_base64(strict_mode=True), minus a call.
        pcm = binascii.a2b_base64(event["delta"], strict_mode=True)
        response_id = str(event["response_id"])
        resp = self._get(response_id)
        item_id = str(event["item_id"])
        if resp.audio_item != item_id:
            resp.audio_item = item_id
            resp.audio_bytes = 0
            resp.audio_content_index = _int(event.get("content_index"))
        if resp.first_audio_at is None:
            resp.first_audio_at = now
        resp.audio_bytes += len(pcm)
        return Decoded(
            events=[
                BidiAudioStreamEvent(audio=pcm, sample_rate=SAMPLE_RATE, response_id=response_id)
            ],
            event_type="response.output_audio.delta",
        )

    def _assistant_delta(self, event: Mapping[str, Any], now: float) -> Decoded:
        item_id = str(event["item_id"])
        delta = str(event.get("delta") or "")
        so_far = self._transcripts.get(item_id, "") + delta
        self._transcripts[item_id] = so_far
        events: list[BidiOutputEvent] = []
        if delta:
            events.append(
                BidiTranscriptStreamEvent(
                    role="assistant",
                    text=delta,
                    is_final=False,
                    current_transcript=so_far,
                    item_id=item_id,
                )
            )
        return Decoded(events=events, event_type=str(event["type"]))

    def _assistant_done(self, event: Mapping[str, Any], now: float) -> Decoded:
        item_id = str(event["item_id"])
        kind = str(event["type"])
        text = event.get("transcript") if kind.endswith("transcript.done") else event.get("text")
        final = str(text if text is not None else self._transcripts.get(item_id, ""))
        self._transcripts.pop(item_id, None)
        return Decoded(
            events=[
                BidiTranscriptStreamEvent(
                    role="assistant",
                    text=final,
                    is_final=True,
                    current_transcript=final,
                    item_id=item_id,
                )
            ],
            event_type=kind,
        )

    def _user_delta(self, event: Mapping[str, Any], now: float) -> Decoded:
        item_id = str(event["item_id"])
        delta = str(event.get("delta") or "")
        key = f"user:{item_id}"
        so_far = self._transcripts.get(key, "") + delta
        self._transcripts[key] = so_far
        events: list[BidiOutputEvent] = []
        if delta:
            events.append(
                BidiTranscriptStreamEvent(
                    role="user",
                    text=delta,
                    is_final=False,
                    current_transcript=so_far,
                    item_id=item_id,
                )
            )
        return Decoded(events=events, event_type=str(event["type"]))

    def _user_done(self, event: Mapping[str, Any], now: float) -> Decoded:
        item_id = str(event["item_id"])
        self._transcripts.pop(f"user:{item_id}", None)
        text = str(event.get("transcript") or "")
        return Decoded(
            events=[
                BidiTranscriptStreamEvent(
                    role="user",
                    text=text,
                    is_final=True,
                    current_transcript=text,
                    item_id=item_id,
                )
            ],
            event_type=str(event["type"]),
        )

    def _user_failed(self, event: Mapping[str, Any], now: float) -> Decoded:
        item_id = str(event["item_id"])
        self._transcripts.pop(f"user:{item_id}", None)
        error = _map(event.get("error"))
        return Decoded(
            events=[
                BidiErrorEvent(
                    message=(
                        "OpenAI Realtime could not transcribe the user's speech: "
                        f"{error.get('message') or 'no reason given'}"
                    ),
                    code=str(error.get("code") or "input_audio_transcription_failed"),
                    recoverable=True,
                    details=_details(
                        item_id=item_id, type=error.get("type"), param=error.get("param")
                    ),
                )
            ],
            event_type=str(event["type"]),
        )

    def _speech_started(self, event: Mapping[str, Any], now: float) -> Decoded:
        target = self._get(self.active) if self.active is not None else self._playing(now)
        events: list[BidiOutputEvent] = []
        if target is not None and not target.interrupted:
            target.interrupted = True
            events.append(
                BidiInterruptionEvent(reason="user_speech", response_id=target.response_id)
            )
        return Decoded(events=events, event_type="input_audio_buffer.speech_started")

    def _call(
        self, response_id: str, call_id: str, name: str, arguments: str
    ) -> ToolUseStreamEvent:
        try:
            parsed: Any = strict_json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            parsed = arguments  # the tool sees the raw text and can report the error
        self._emitted_calls.add(call_id)
        self._get(response_id).tool_calls.append(call_id)
        return ToolUseStreamEvent(tool_use={"toolUseId": call_id, "name": name, "input": parsed})

    def _args_done(self, event: Mapping[str, Any], now: float) -> Decoded:
        call_id = str(event["call_id"])
        response_id = str(event["response_id"])
        if call_id in self._emitted_calls:
            return Decoded(event_type=str(event["type"]))
        use = self._call(response_id, call_id, str(event["name"]), str(event.get("arguments", "")))
        return Decoded(
            events=[use], event_type=str(event["type"]), tool_calls=[(response_id, call_id)]
        )

    def _function_items(
        self, response_id: str, items: Iterable[Any]
    ) -> tuple[list[BidiOutputEvent], list[tuple[str, str]]]:
        events: list[BidiOutputEvent] = []
        calls: list[tuple[str, str]] = []
        for item in items:
            if not isinstance(item, Mapping) or item.get("type") != "function_call":
                continue
            call_id = str(item.get("call_id") or item.get("id") or "")
            if not call_id or call_id in self._emitted_calls:
                continue
            events.append(
                self._call(response_id, call_id, str(item["name"]), str(item.get("arguments", "")))
            )
            calls.append((response_id, call_id))
        return events, calls

    def _output_item_done(self, event: Mapping[str, Any], now: float) -> Decoded:
        events, calls = self._function_items(str(event["response_id"]), [event["item"]])
        return Decoded(events=events, event_type=str(event["type"]), tool_calls=calls)

    def _response_done(self, event: Mapping[str, Any], now: float) -> Decoded:
        response = event["response"]
        response_id = str(response["id"])
        events: list[BidiOutputEvent] = []
        if response_id not in self._responses:
            events.append(BidiResponseStartEvent(response_id=response_id))
        resp = self._get(response_id)
        calls_events, calls = self._function_items(response_id, response.get("output") or [])
        events.extend(calls_events)
        usage = response.get("usage")
        if isinstance(usage, Mapping):
            events.append(usage_event(usage))
        status = response.get("status")
        details = _map(response.get("status_details"))
        reason = details.get("reason")
        stop: StopReason
        if status == "cancelled":
            stop = "interrupted"
            resp.cancelled_reason = str(reason or "cancelled")
            if reason == "turn_detected" and not resp.interrupted:
                resp.interrupted = True
                events.append(BidiInterruptionEvent(reason="user_speech", response_id=response_id))
        elif status == "failed":
            stop = "error"
            error = _map(details.get("error"))
            events.append(
                BidiErrorEvent(
                    message=(
                        f"OpenAI Realtime response {response_id} failed: "
                        f"{error.get('message') or 'no reason given'}"
                    ),
                    code=str(error.get("code") or "response_failed"),
                    recoverable=True,
                    details=_details(response_id=response_id, type=error.get("type")),
                )
            )
        elif status == "incomplete":
            stop = "tool_use" if resp.tool_calls else "complete"
            events.append(
                BidiErrorEvent(
                    message=(
                        f"OpenAI Realtime response {response_id} is incomplete "
                        f"({reason or 'no reason given'})."
                    ),
                    code="response_incomplete",
                    recoverable=True,
                    details=_details(response_id=response_id, reason=reason),
                )
            )
        else:
            stop = "tool_use" if resp.tool_calls else "complete"
        events.append(BidiResponseCompleteEvent(response_id=response_id, stop_reason=stop))
        resp.done = True
        if self.active == response_id:
            self.active = None
        self._last = response_id
        return Decoded(
            events=events, event_type="response.done", done=response_id, tool_calls=calls
        )

    def _error(self, event: Mapping[str, Any], now: float) -> Decoded:
        error = _map(event.get("error"))
        code = error.get("code")
        message = str(error.get("message") or "OpenAI Realtime reported an error.")
        eid = error.get("event_id")
        if code == "session_expired":
            return Decoded(
                event_type="error",
                error_code=code,
                error_event_id=eid,
                expired=f"OpenAI Realtime session expired: {message} Restart to continue.",
            )
        return Decoded(
            events=[
                BidiErrorEvent(
                    message=message,
                    code=str(code) if code is not None else str(error.get("type") or "error"),
                    recoverable=True,
                    details=_details(
                        type=error.get("type"), param=error.get("param"), event_id=eid
                    ),
                )
            ],
            event_type="error",
            error_code=str(code) if code is not None else None,
            error_event_id=str(eid) if eid is not None else None,
        )


def _ignore(decoder: Decoder, event: Mapping[str, Any], now: float) -> Decoded:
    return Decoded(event_type=str(event.get("type", "")))


_Handler = Callable[[Decoder, Mapping[str, Any], float], Decoded]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(IGNORED_SERVER_EVENTS, _ignore),
    "response.created": Decoder._response_created,
    "response.done": Decoder._response_done,
    "response.output_audio.delta": Decoder._audio_delta,
    "response.output_audio_transcript.delta": Decoder._assistant_delta,
    "response.output_audio_transcript.done": Decoder._assistant_done,
    "response.output_text.delta": Decoder._assistant_delta,
    "response.output_text.done": Decoder._assistant_done,
    "response.function_call_arguments.done": Decoder._args_done,
    "response.output_item.done": Decoder._output_item_done,
    "conversation.item.input_audio_transcription.delta": Decoder._user_delta,
    "conversation.item.input_audio_transcription.completed": Decoder._user_done,
    "conversation.item.input_audio_transcription.failed": Decoder._user_failed,
    "input_audio_buffer.speech_started": Decoder._speech_started,
    "error": Decoder._error,
}


# ------------------------------------------------------------- sequencing


class ResponseGate:
    """Decides when ``response.create`` may be sent (never two active responses).

    * :meth:`want` asks for a response (text input, an answered tool response).
    * A response that called tools asks for its follow-up only when it is done
      *and* every one of its calls has a result: one ``response.create`` for all.
    * :meth:`take` says whether to send now; it marks the create as pending
      until ``response.created`` (:meth:`created`) or an error about it
      (:meth:`failed`) arrives.
    """

    def __init__(self) -> None:
        self.active: str | None = None
        self.pending: str | None = None
        self.wanted = False
        self._calls: dict[str, set[str]] = {}
        self._finished: set[str] = set()
        self._sent: list[str] = []

    def want(self) -> None:
        """Ask for a response as soon as none is active."""
        self.wanted = True

    def tool_call(self, response_id: str, call_id: str) -> None:
        """Record that *response_id* called a tool."""
        self._calls.setdefault(response_id, set()).add(call_id)

    def tool_result(self, call_id: str) -> None:
        """Record a tool result; the last one of a finished response wants a response."""
        for response_id, calls in self._calls.items():
            if call_id in calls:
                calls.discard(call_id)
                self._settle(response_id)
                return
        self.wanted = True  # a call this connection never saw (e.g. from replayed history)

    def created(self, response_id: str) -> None:
        """``response.created`` arrived."""
        self.pending = None
        self.active = response_id

    def done(self, response_id: str) -> None:
        """``response.done`` arrived."""
        if self.active == response_id:
            self.active = None
        if response_id in self._calls:
            self._finished.add(response_id)
            self._settle(response_id)

    def failed(self, eid: str, *, retry: bool) -> bool:
        """An ``error`` about client event *eid* arrived; return whether it was a create.

        With *retry* (the conversation already had an active response, e.g. one
        the server's turn detection started) the response is asked for again.
        """
        if eid not in self._sent:
            return False
        self._sent.remove(eid)
        if self.pending == eid:
            self.pending = None
        if retry:
            self.wanted = True
        return True

    def take(self, eid: str) -> bool:
        """Return True (and mark *eid* pending) if a ``response.create`` should go out now."""
        if self.wanted and self.active is None and self.pending is None:
            self.wanted = False
            self.pending = eid
            self._sent = [*self._sent[-15:], eid]
            return True
        return False

    def _settle(self, response_id: str) -> None:
        if response_id in self._finished and not self._calls.get(response_id):
            self._calls.pop(response_id, None)
            self._finished.discard(response_id)
            self.wanted = True
