"""Nova Sonic JSON events <-> bidi events, as pure functions (no I/O).

Input side: builders for every event the client sends (``sessionStart`` ...
``sessionEnd``), each returned as the ``{"event": {<name>: {...}}}`` object that
travels base64-encoded in a Bedrock ``chunk``. Output side:
:class:`OutputTranslator` turns the service's events into DESIGN §3 events.

Nova output semantics handled here:

* ``contentStart`` TEXT carries ``additionalModelFields`` (a JSON *string*) with
  ``generationStage`` ``SPECULATIVE`` (planned speech) or ``FINAL`` (what was
  actually spoken). SPECULATIVE assistant text becomes non-final transcript
  deltas; FINAL assistant text is collected and emitted as the **one** final
  transcript of the turn when the turn ends. USER text is speech recognition
  of the user and becomes one final user transcript per content block.
* Barge-in arrives as ``contentEnd.stopReason == "INTERRUPTED"`` and/or as the
  text ``{ "interrupted" : true }``; both together give exactly one
  :class:`~bidi_core.BidiInterruptionEvent` per response.
* ``usageEvent`` carries cumulative totals (and usually ``details.delta``);
  :class:`~bidi_core.BidiUsageEvent` gets the increment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from bidi_core import _fastcodec as codec
from bidi_core.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
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
from bidi_core.types import Messages, ToolResult, ToolSpec

from ._settings import HistoryLimits, NovaSettings

__all__ = [
    "INTERRUPTED_MARKER",
    "OutputTranslator",
    "audio_content_start",
    "audio_input",
    "content_end",
    "decode_chunk",
    "decode_tool_result",
    "encode_chunk",
    "encode_tool_result",
    "is_interrupted_marker",
    "prompt_end",
    "prompt_start",
    "session_end",
    "session_start",
    "text_content",
    "tool_result_content",
    "tool_spec",
    "trim_history",
]

logger = logging.getLogger("bidi_nova_sonic")

#: The text Nova sends in an assistant text block when the user barged in.
INTERRUPTED_MARKER = '{ "interrupted" : true }'

NovaEvent = dict[str, Any]


def _event(name: str, body: dict[str, Any]) -> NovaEvent:
    return {"event": {name: body}}


def encode_chunk(event: NovaEvent) -> bytes:
    """Serialize one Nova event for ``BidirectionalInputPayloadPart(bytes_=...)``.

    Compact strict JSON in UTF-8 (``bidi_core._fastcodec``: orjson with the ``fast``
    extra); a NaN or an infinity raises ValueError.
    """
    return codec.dumpb(event)


def decode_chunk(data: bytes) -> NovaEvent:
    """Parse the bytes of one output chunk into its ``{"event": {...}}`` object.

    Raises:
        ValueError: The bytes are not a JSON object with an ``event`` object.
    """
    value = codec.loads(data)  # strict: NaN and Infinity are not JSON
    if not isinstance(value, dict) or not isinstance(value.get("event"), dict):
        msg = "A Nova output chunk must be a JSON object with an 'event' object."
        raise ValueError(msg)
    return value


# ----------------------------------------------------------------------- input


def session_start(settings: NovaSettings) -> NovaEvent:
    """``sessionStart``: inference parameters (and Nova 2 turn detection)."""
    body: dict[str, Any] = {"inferenceConfiguration": dict(settings.inference)}
    if settings.turn_detection is not None:
        body["turnDetectionConfiguration"] = dict(settings.turn_detection)
    body.update(settings.session_extra)
    return _event("sessionStart", body)


def tool_spec(spec: ToolSpec) -> dict[str, Any]:
    """A bidi tool spec as a Nova ``toolSpec`` (the input schema as a JSON *string*)."""
    schema = spec.get("inputSchema", {}).get("json", {"type": "object", "properties": {}})
    return {
        "toolSpec": {
            "name": spec["name"],
            "description": spec.get("description", ""),
            "inputSchema": {"json": json.dumps(schema, separators=(",", ":"))},
        }
    }


def prompt_start(prompt_name: str, settings: NovaSettings, tools: Iterable[ToolSpec]) -> NovaEvent:
    """``promptStart``: output formats, voice and tools."""
    body: dict[str, Any] = {
        "promptName": prompt_name,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": settings.output_rate,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": settings.voice,
            "encoding": "base64",
            "audioType": "SPEECH",
        },
        "toolUseOutputConfiguration": {"mediaType": "application/json"},
    }
    specs = [tool_spec(t) for t in tools]
    if specs:
        body["toolConfiguration"] = {"tools": specs}
    for key, value in settings.prompt_extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return _event("promptStart", body)


def text_content(
    prompt_name: str,
    content_name: str,
    role: Literal["SYSTEM", "USER", "ASSISTANT", "SYSTEM_SPEECH"],
    text: str,
    *,
    interactive: bool,
) -> list[NovaEvent]:
    """``contentStart`` TEXT, ``textInput``, ``contentEnd`` for one text block."""
    return [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "type": "TEXT",
                "interactive": interactive,
                "role": role,
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        ),
        _event(
            "textInput",
            {"promptName": prompt_name, "contentName": content_name, "content": text},
        ),
        content_end(prompt_name, content_name),
    ]


def audio_content_start(prompt_name: str, content_name: str, sample_rate: int) -> NovaEvent:
    """``contentStart`` AUDIO: the one interactive audio block of the session."""
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "type": "AUDIO",
            "interactive": True,
            "role": "USER",
            "audioInputConfiguration": {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": sample_rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        },
    )


def audio_input(prompt_name: str, content_name: str, pcm: bytes) -> NovaEvent:
    """``audioInput``: base64 PCM16 into the open audio block."""
    return _event(
        "audioInput",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "content": codec.b64encode(pcm),
        },
    )


def encode_tool_result(result: ToolResult) -> str:
    """A bidi tool result as the JSON string Nova's ``toolResult.content`` carries.

    A single ``{"json": ...}`` block that is an object is sent as that object;
    otherwise the content is ``{"result": <text or list>}``. An error result is
    ``{"status": "error", "error": <text or list>}``.
    """
    blocks = result.get("content", [])
    values: list[Any] = []
    for block in blocks:
        if "json" in block:
            values.append(block["json"])
        elif "text" in block:
            values.append(block["text"])
    value: Any
    if len(values) == 1:
        value = values[0]
    elif all(isinstance(v, str) for v in values):
        value = "\n".join(values)
    else:
        value = values
    if result.get("status") == "error":
        return json.dumps({"status": "error", "error": value}, ensure_ascii=False)
    if isinstance(value, dict) and len(blocks) == 1 and "json" in blocks[0]:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps({"result": value}, ensure_ascii=False)


def decode_tool_result(tool_use_id: str, content: str) -> ToolResult:
    """Inverse of :func:`encode_tool_result` (used by the fake server)."""
    try:
        value = json.loads(content)
    except ValueError:
        return {"toolUseId": tool_use_id, "status": "success", "content": [{"text": content}]}
    if isinstance(value, dict) and value.get("status") == "error" and "error" in value:
        inner = value["error"]
        block: dict[str, Any] = {"text": inner} if isinstance(inner, str) else {"json": inner}
        return {"toolUseId": tool_use_id, "status": "error", "content": [block]}  # type: ignore[list-item]
    if isinstance(value, dict) and set(value) == {"result"}:
        inner = value["result"]
        block = {"text": inner} if isinstance(inner, str) else {"json": inner}
        return {"toolUseId": tool_use_id, "status": "success", "content": [block]}  # type: ignore[list-item]
    return {"toolUseId": tool_use_id, "status": "success", "content": [{"json": value}]}


def tool_result_content(prompt_name: str, content_name: str, result: ToolResult) -> list[NovaEvent]:
    """``contentStart`` TOOL, ``toolResult``, ``contentEnd`` for one tool result."""
    return [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "interactive": False,
                "type": "TOOL",
                "role": "TOOL",
                "toolResultInputConfiguration": {
                    "toolUseId": result["toolUseId"],
                    "type": "TEXT",
                    "textInputConfiguration": {"mediaType": "text/plain"},
                },
            },
        ),
        _event(
            "toolResult",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "content": encode_tool_result(result),
            },
        ),
        content_end(prompt_name, content_name),
    ]


def content_end(prompt_name: str, content_name: str) -> NovaEvent:
    """``contentEnd`` of one input block."""
    return _event("contentEnd", {"promptName": prompt_name, "contentName": content_name})


def prompt_end(prompt_name: str) -> NovaEvent:
    """``promptEnd``."""
    return _event("promptEnd", {"promptName": prompt_name})


def session_end() -> NovaEvent:
    """``sessionEnd`` (the documented shutdown event; not ``connectionEnd``)."""
    return _event("sessionEnd", {})


def _cut_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def trim_history(
    messages: Messages, limits: HistoryLimits
) -> list[tuple[Literal["USER", "ASSISTANT"], str]]:
    """Return the history Nova accepts: text only, first message USER, within the caps.

    Each message's text blocks are joined; tool use/result blocks are skipped
    (Nova history is text). A message longer than ``max_message_bytes`` is cut
    (keeping its start). The oldest messages are dropped first until at most
    ``max_messages`` remain and their total is within ``max_total_bytes``; then
    leading ASSISTANT messages are dropped so the first one is USER.
    """
    items: list[tuple[Literal["USER", "ASSISTANT"], str]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        texts = [b["text"] for b in message.get("content", []) if isinstance(b.get("text"), str)]
        text = "\n".join(t for t in texts if t.strip()).strip()
        if not text:
            continue
        items.append(
            ("USER" if role == "user" else "ASSISTANT", _cut_utf8(text, limits.max_message_bytes))
        )
    if len(items) > limits.max_messages:
        items = items[-limits.max_messages :]
    total = sum(len(t.encode("utf-8")) for _, t in items)
    while items and total > limits.max_total_bytes:
        total -= len(items.pop(0)[1].encode("utf-8"))
    while items and items[0][0] != "USER":
        items.pop(0)
    return items


# ---------------------------------------------------------------------- output


def is_interrupted_marker(text: str) -> bool:
    """Whether *text* is Nova's barge-in marker ``{ "interrupted" : true }``."""
    stripped = text.strip()
    if not stripped.startswith("{") or "interrupted" not in stripped:
        return False
    try:
        value = codec.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("interrupted") is True


def _generation_stage(body: dict[str, Any]) -> str | None:
    fields = body.get("additionalModelFields")
    if isinstance(fields, str):
        try:
            fields = codec.loads(fields)
        except ValueError:
            return None
    if isinstance(fields, dict):
        stage = fields.get("generationStage")
        return stage if isinstance(stage, str) else None
    return None


@attrs.define
class _Content:
    kind: str
    role: str
    stage: str | None
    sample_rate: int | None = None
    text: list[str] = attrs.field(factory=list)


@attrs.define
class _Response:
    id: str
    finals: list[str] = attrs.field(factory=list)
    speculative: str = ""
    interrupted: bool = False


_STOP_REASONS: dict[str, StopReason] = {
    "END_TURN": "complete",
    "INTERRUPTED": "interrupted",
    "TOOL_USE": "tool_use",
}


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        if out and part and not out[-1].isspace() and not part[0].isspace():
            out += " "
        out += part
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OutputTranslator:
    """Turns one Nova session's output events into bidi events (stateful, no I/O).

    Create one per connection; :meth:`translate` returns the events for one Nova
    output event (zero or more: none is dropped silently, unknown ones are logged).

    Args:
        output_rate: The audio rate asked for in ``promptStart``.
    """

    def __init__(self, *, output_rate: int) -> None:
        self.output_rate = output_rate
        self._contents: dict[str, _Content] = {}
        self._response: _Response | None = None
        self._responses = 0
        self._usage_in = {"text": 0, "audio": 0}
        self._usage_out = {"text": 0, "audio": 0}

    @property
    def response_active(self) -> bool:
        """Whether an assistant response is in progress."""
        return self._response is not None

    def translate(self, event: NovaEvent) -> list[BidiOutputEvent]:
        """Return the bidi events for one ``{"event": {<name>: {...}}}`` object."""
        out: list[BidiOutputEvent] = []
        for name, body in event.get("event", {}).items():
            if not isinstance(body, dict):
                continue
            handler = getattr(self, f"_on_{name}", None)
            if handler is None:
                logger.debug("Ignoring Nova output event %r.", name)
                continue
            handler(body, out)
        return out

    def abort_response(self) -> str | None:
        """Forget the response in progress (the stream failed); return its id, if any."""
        response, self._response = self._response, None
        return response.id if response is not None else None

    # -------------------------------------------------------------- helpers

    def _start_response(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> _Response:
        if self._response is None:
            self._responses += 1
            rid = body.get("contentId") or body.get("completionId") or "response"
            self._response = _Response(id=f"{rid}#{self._responses}")
            out.append(BidiResponseStartEvent(response_id=self._response.id))
        return self._response

    def _interrupt(self, out: list[BidiOutputEvent]) -> None:
        response = self._response
        if response is not None and not response.interrupted:
            response.interrupted = True
            out.append(BidiInterruptionEvent(reason="user_speech", response_id=response.id))

    def _complete(self, reason: StopReason, out: list[BidiOutputEvent]) -> None:
        response = self._response
        if response is None:
            return
        self._response = None
        if response.interrupted:
            reason = "interrupted"
        text = _join(response.finals)
        if text:
            out.append(
                BidiTranscriptStreamEvent(
                    role="assistant",
                    text=text,
                    is_final=True,
                    current_transcript=text,
                    item_id=response.id,
                )
            )
        out.append(BidiResponseCompleteEvent(response_id=response.id, stop_reason=reason))

    # ------------------------------------------------------------- handlers

    def _on_completionStart(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        del body, out  # the turn starts with its first assistant content

    def _on_contentStart(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        kind = str(body.get("type", ""))
        role = str(body.get("role", ""))
        stage = _generation_stage(body) if kind == "TEXT" else None
        rate = None
        audio_cfg = body.get("audioOutputConfiguration")
        if isinstance(audio_cfg, dict):
            rate = audio_cfg.get("sampleRateHertz")
        sample_rate = _int(rate) or None
        if sample_rate is not None and not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            out.append(
                BidiErrorEvent(
                    message=(
                        f"Nova Sonic stated an output audio rate of {sample_rate!r} Hz; the "
                        f"configured {self.output_rate} Hz is used instead."
                    ),
                    code="malformed_event",
                    recoverable=True,
                    details={"event": "contentStart"},
                )
            )
            sample_rate = None
        content = _Content(kind=kind, role=role, stage=stage, sample_rate=sample_rate)
        content_id = str(body.get("contentId", ""))
        self._contents[content_id] = content
        if role == "USER":
            if self._response is not None and self._response.interrupted:
                self._complete("interrupted", out)
            return
        if role not in ("ASSISTANT", "TOOL"):
            return
        response = self._response
        new_segment = kind == "AUDIO" or stage == "SPECULATIVE"
        if response is not None and response.interrupted and new_segment:
            self._complete("interrupted", out)
        self._start_response(body, out)

    def _on_textOutput(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        text = body.get("content")
        if not isinstance(text, str):
            return
        content = self._contents.get(str(body.get("contentId", "")))
        role = str(body.get("role") or (content.role if content else ""))
        stage = content.stage if content else None
        if is_interrupted_marker(text):
            self._interrupt(out)
            return
        if role == "USER":
            if content is not None:
                content.text.append(text)
            else:
                out.append(BidiTranscriptStreamEvent(role="user", text=text, is_final=True))
            return
        response = self._start_response(body, out)
        if stage == "FINAL":
            response.finals.append(text)
            return
        # SPECULATIVE (or unstaged) assistant text: what the model plans to say.
        delta = text
        last = response.speculative[-1:]
        if last and delta and not last.isspace() and not delta[0].isspace():
            delta = " " + delta
        response.speculative += delta
        out.append(
            BidiTranscriptStreamEvent(
                role="assistant",
                text=delta,
                is_final=False,
                current_transcript=response.speculative,
                item_id=response.id,
            )
        )

    def _on_audioOutput(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        data = body.get("content")
        if not isinstance(data, str) or not data:
            return
        try:
            audio = codec.b64decode(data)  # strict: anything but base64 is refused
        except ValueError as exc:  # binascii.Error, or a non-ASCII str
            out.append(
                BidiErrorEvent(
                    message=f"Nova Sonic sent audio that is not base64 ({exc}); it was skipped.",
                    code="malformed_event",
                    recoverable=True,
                    details={"event": "audioOutput"},
                )
            )
            return
        content = self._contents.get(str(body.get("contentId", "")))
        response = self._start_response(body, out)
        rate = (content.sample_rate if content else None) or self.output_rate
        out.append(BidiAudioStreamEvent(audio=audio, sample_rate=rate, response_id=response.id))

    def _on_toolUse(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        self._start_response(body, out)
        raw = body.get("content")
        tool_input: Any = {}
        if isinstance(raw, str) and raw.strip():
            try:
                tool_input = codec.loads(raw)
            except ValueError:
                tool_input = {"raw": raw}
        elif isinstance(raw, dict):
            tool_input = raw
        out.append(
            ToolUseStreamEvent(
                tool_use={
                    "toolUseId": str(body.get("toolUseId", "")),
                    "name": str(body.get("toolName", "")),
                    "input": tool_input,
                }
            )
        )

    def _on_contentEnd(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        content = self._contents.pop(str(body.get("contentId", "")), None)
        reason = str(body.get("stopReason", ""))
        kind = str(body.get("type") or (content.kind if content else ""))
        if content is not None and content.role == "USER":
            text = "".join(content.text).strip()
            if text:
                out.append(
                    BidiTranscriptStreamEvent(
                        role="user",
                        text=text,
                        is_final=True,
                        current_transcript=text,
                        item_id=str(body.get("contentId")) or None,
                    )
                )
            return
        if reason == "INTERRUPTED":
            self._interrupt(out)
            if kind != "AUDIO":
                self._complete("interrupted", out)
        elif reason in ("END_TURN", "TOOL_USE"):
            self._complete(_STOP_REASONS[reason], out)

    def _on_completionEnd(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        reason = _STOP_REASONS.get(str(body.get("stopReason", "")), "complete")
        if reason == "interrupted":
            self._interrupt(out)
        self._complete(reason, out)

    def _on_usageEvent(self, body: dict[str, Any], out: list[BidiOutputEvent]) -> None:  # noqa: N802
        details = body.get("details")
        details = details if isinstance(details, dict) else {}
        total = details.get("total") if isinstance(details.get("total"), dict) else None
        delta = details.get("delta") if isinstance(details.get("delta"), dict) else None

        def split(section: dict[str, Any] | None, side: str) -> dict[str, int]:
            part = (section or {}).get(side)
            part = part if isinstance(part, dict) else {}
            return {"text": _int(part.get("textTokens")), "audio": _int(part.get("speechTokens"))}

        if delta is not None:
            inc_in, inc_out = split(delta, "input"), split(delta, "output")
            if total is not None:
                self._usage_in, self._usage_out = split(total, "input"), split(total, "output")
            else:
                self._usage_in = {k: self._usage_in[k] + inc_in[k] for k in inc_in}
                self._usage_out = {k: self._usage_out[k] + inc_out[k] for k in inc_out}
        elif total is not None:
            now_in, now_out = split(total, "input"), split(total, "output")
            inc_in = {k: max(0, now_in[k] - self._usage_in[k]) for k in now_in}
            inc_out = {k: max(0, now_out[k] - self._usage_out[k]) for k in now_out}
            self._usage_in, self._usage_out = now_in, now_out
        else:
            # Only the flat cumulative counters: attribute them without a modality split.
            now_in_total = _int(body.get("totalInputTokens"))
            now_out_total = _int(body.get("totalOutputTokens"))
            seen_in = sum(self._usage_in.values())
            seen_out = sum(self._usage_out.values())
            inc_in = {"text": max(0, now_in_total - seen_in), "audio": 0}
            inc_out = {"text": max(0, now_out_total - seen_out), "audio": 0}
            self._usage_in = {
                "text": self._usage_in["text"] + inc_in["text"],
                "audio": self._usage_in["audio"],
            }
            self._usage_out = {
                "text": self._usage_out["text"] + inc_out["text"],
                "audio": self._usage_out["audio"],
            }
        in_tokens = sum(inc_in.values())
        out_tokens = sum(inc_out.values())
        if in_tokens == 0 and out_tokens == 0:
            return
        out.append(
            BidiUsageEvent(
                input_tokens=in_tokens,
                output_tokens=out_tokens,
                total_tokens=in_tokens + out_tokens,
                input_details=inc_in,
                output_details=inc_out,
            )
        )
