"""Gemini Live (BidiGenerateContent) <-> bidi events, as pure functions and a state machine.

Nothing here does I/O. :class:`ServerTranslator` turns each
``google.genai.types.LiveServerMessage`` into normalized bidi events, mapping every
field of the message (a message may carry audio, transcriptions, usage and a turn
end together) and synthesizing the response start/complete events Gemini does not
send. The other functions build the client side: setup pieces, history turns and
tool responses.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from google.genai import types

from bidi_core import (
    AuthenticationError,
    BidiAudioStreamEvent,
    BidiConnectionError,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ProviderError,
    ToolUseStreamEvent,
)
from bidi_core._json import json_problem
from bidi_core.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from bidi_core.types import Messages, ToolResult, ToolSpec

__all__ = [
    "DEFAULT_INPUT_SAMPLE_RATE",
    "DEFAULT_OUTPUT_SAMPLE_RATE",
    "PROVIDER",
    "ServerTranslator",
    "audio_mime",
    "error_from_close",
    "function_declarations",
    "function_response",
    "history_turns",
    "modality_name",
    "parse_duration",
    "parse_rate",
    "redact",
    "usage_event",
]

logger = logging.getLogger("bidi_gemini_live")

#: Registry name, used as ``ProviderError.provider``.
PROVIDER = "gemini_live"
#: The rate Gemini Live expects input PCM at (other rates are resampled to it).
DEFAULT_INPUT_SAMPLE_RATE = 16000
#: The rate of Gemini Live's output PCM (``audio/pcm;rate=24000``).
DEFAULT_OUTPUT_SAMPLE_RATE = 24000

_RATE_RE = re.compile(r"rate\s*=\s*(\d+)")
_DURATION_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)s\s*$")
_NORMAL_TURN_END = {None, "TURN_COMPLETE_REASON_UNSPECIFIED", "NEED_MORE_INPUT"}

StopReason = Literal["complete", "interrupted", "tool_use", "error"]


# ------------------------------------------------------------------ client side


def audio_mime(sample_rate: int) -> str:
    """Return the realtime-input mime type stating the true PCM rate."""
    return f"audio/pcm;rate={int(sample_rate)}"


def parse_rate(mime_type: str | None, default: int) -> int:
    """Return the ``rate=`` of an ``audio/pcm;rate=N`` mime type, else *default*."""
    match = _RATE_RE.search(mime_type or "")
    return int(match.group(1)) if match else default


def parse_duration(value: Any) -> float | None:
    """Parse a protobuf Duration (``"50s"``, ``"1.5s"``, or seconds as a number)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1))
    return None


def function_declarations(tools: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Return Gemini function declarations (JSON-schema parameters) for bidi tool specs."""
    declarations = []
    for spec in tools:
        declaration: dict[str, Any] = {"name": spec["name"]}
        if spec.get("description"):
            declaration["description"] = spec["description"]
        schema = spec.get("inputSchema", {}).get("json")
        if schema:
            declaration["parameters_json_schema"] = schema
        declarations.append(declaration)
    return declarations


def _tool_result_payload(result: ToolResult) -> Any:
    values: list[Any] = []
    for item in result.get("content", []):
        if "json" in item:
            values.append(item["json"])
        elif "text" in item:
            values.append(item["text"])
    if not values:
        return ""
    if all(isinstance(v, str) for v in values):
        return "\n".join(values)
    return values[0] if len(values) == 1 else values


def function_response(result: ToolResult, name: str) -> dict[str, Any]:
    """Return a ``FunctionResponse`` dict: the call's id, the function **name**, the output.

    Success results become ``{"output": ...}``, error results ``{"error": ...}``
    (the keys the Gemini API documents for ``FunctionResponse.response``).
    """
    key = "error" if result.get("status") == "error" else "output"
    return {
        "id": result["toolUseId"],
        "name": name,
        "response": {key: _tool_result_payload(result)},
    }


def _block_text(block: Mapping[str, Any]) -> str | None:
    if "text" in block:
        return str(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        args = json.dumps(use.get("input", {}), sort_keys=True, default=str)
        return f"[tool call {use.get('name')}({args}) id={use.get('toolUseId')}]"
    if "toolResult" in block:
        result = block["toolResult"]
        payload = _tool_result_payload(result)
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        status = result.get("status", "success")
        return f"[tool result id={result.get('toolUseId')} status={status}: {text}]"
    return None


def history_turns(messages: Messages) -> list[dict[str, Any]]:
    """Render bidi history as Gemini ``Content`` turns of text.

    Roles map ``user -> user`` and ``assistant -> model``; tool calls and tool
    results are rendered as bracketed text (the Live API takes text history);
    consecutive messages of one role are merged into one turn. Blocks that are
    neither text nor tools (e.g. images) are skipped.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.get("role") == "assistant" else "user"
        parts = [
            {"text": text}
            for block in message.get("content", [])
            if (text := _block_text(block)) is not None and text != ""
        ]
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret in *text* with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


#: Close reasons the service gives for a missing or wrong API key.
_KEY_REJECTED = re.compile(r"API key not valid|API_KEY_INVALID|unregistered callers", re.I)


def error_from_close(code: int | None, reason: str | None) -> ProviderError:
    """Map a WebSocket close (code, reason) from the Live API to a typed bidi error.

    1007 (invalid argument) and 1008 (policy: bad key, quota) are not retryable;
    1011 (internal, e.g. "Deadline expired") and abnormal closures are.
    """
    reason = (reason or "").strip()
    said = f": {reason}" if reason else ""
    if code in (1007, 1008) and _KEY_REJECTED.search(reason):
        msg = (
            f"Gemini Live rejected the API key (close {code}{said}). Check GOOGLE_API_KEY / "
            "GEMINI_API_KEY or client_config['api_key']: create a key at "
            "https://aistudio.google.com/apikey."
        )
        return AuthenticationError(msg, provider=PROVIDER, code=code)
    if code == 1007:
        msg = f"Gemini Live rejected a request as invalid (close 1007){said}."
        return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=False)
    if code == 1008:
        msg = (
            f"Gemini Live refused the connection by policy (close 1008){said}. "
            "Check the API key, the model name and your quota."
        )
        return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=False)
    if code == 1011:
        msg = f"Gemini Live failed internally (close 1011){said}; start a new connection."
        return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=True)
    if code == 1006:
        msg = "The Gemini Live connection dropped without a close frame (1006)."
        return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=True)
    if code is not None and 400 <= code < 500:
        msg = f"Gemini Live rejected the request ({code}){said}."
        return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=code == 429)
    msg = f"Gemini Live closed the connection (close {code}){said}."
    return BidiConnectionError(msg, provider=PROVIDER, code=code, retryable=True)


# ------------------------------------------------------------------ server side


def modality_name(modality: Any) -> str:
    """Return a clean lower-case modality name: ``"audio"``, ``"text"``, ``"image"``..."""
    value = getattr(modality, "value", modality)
    name = str(value or "text").lower()
    if name.startswith("mediamodality."):
        name = name.split(".", 1)[1]
    return "text" if name == "modality_unspecified" else name


def _details(*lists: list[types.ModalityTokenCount] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for items in lists:
        for item in items or []:
            name = modality_name(item.modality)
            out[name] = out.get(name, 0) + int(item.token_count or 0)
    return out


def usage_event(usage: types.UsageMetadata) -> BidiUsageEvent:
    """Map ``usageMetadata`` (the usage of one model response) to an incremental usage event.

    Input counts prompt + tool-use prompt tokens; output counts response + thoughts
    tokens, so ``input + output == totalTokenCount``. Modality names are clean
    (``"audio"``, ``"text"``).
    """
    prompt = int(usage.prompt_token_count or 0) + int(usage.tool_use_prompt_token_count or 0)
    output = int(usage.response_token_count or 0) + int(usage.thoughts_token_count or 0)
    total = int(usage.total_token_count or 0) or prompt + output
    return BidiUsageEvent(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=total,
        input_details=_details(usage.prompt_tokens_details, usage.tool_use_prompt_tokens_details),
        output_details=_details(usage.response_tokens_details),
        cached_tokens=int(usage.cached_content_token_count or 0),
    )


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class ServerTranslator:
    """Turns Gemini Live server messages into bidi events; one instance per connection.

    Gemini has no response-start or final-transcript messages, so they are
    synthesized: a response starts at the first model output (audio, text,
    output transcription or tool call) and completes at ``turnComplete``
    (``stop_reason`` ``complete``, ``interrupted`` or ``error`` for an abnormal
    ``turnCompleteReason``) or right after a ``toolCall`` (``tool_use``). Each
    response yields exactly one final assistant transcript (when it said
    anything). Input transcription chunks become user deltas, finalized at
    ``finished`` or when the model starts answering.

    Args:
        output_sample_rate: Rate assumed when an audio mime type names none.
        text_transcript: Use ``modelTurn`` text parts as the assistant transcript
            (TEXT response modality, or output transcription off); otherwise the
            ``outputTranscription`` is the transcript and stray text parts are
            logged and skipped, so a transcript is never doubled.
    """

    def __init__(
        self, *, output_sample_rate: int = DEFAULT_OUTPUT_SAMPLE_RATE, text_transcript: bool
    ) -> None:
        self.output_sample_rate = output_sample_rate
        self.text_transcript = text_transcript
        #: The latest resumable session handle, or None.
        self.handle: str | None = None
        #: Seconds left given by the last ``goAway``; None before any.
        self.go_away: float | None = None
        #: Function name of every tool call id seen on this connection.
        self.tool_names: dict[str, str] = {}
        #: Tool call ids the server withdrew (``toolCallCancellation``).
        self.cancelled: set[str] = set()
        self._response: str | None = None
        self._item: str | None = None
        self._transcript = ""
        self._stop: StopReason = "complete"
        self._user_item: str | None = None
        self._user_text = ""

    @property
    def response_active(self) -> bool:
        """Whether a response has started and not completed."""
        return self._response is not None

    # ---------------------------------------------------------------- helpers

    def _start(self, out: list[BidiOutputEvent]) -> str:
        self._finish_user(out)
        if self._response is not None and self._stop == "interrupted":
            # New output after an interruption without turnComplete: a new response.
            self._complete(out)
        if self._response is None:
            self._response = uuid.uuid4().hex
            self._item = f"item_{self._response}"
            self._transcript = ""
            self._stop = "complete"
            out.append(BidiResponseStartEvent(response_id=self._response))
        return self._response

    def _complete(self, out: list[BidiOutputEvent], stop: StopReason | None = None) -> None:
        response = self._response
        if response is None:
            return
        if self._transcript:
            out.append(
                BidiTranscriptStreamEvent(
                    role="assistant",
                    text=self._transcript,
                    is_final=True,
                    current_transcript=self._transcript,
                    item_id=self._item,
                )
            )
        out.append(BidiResponseCompleteEvent(response_id=response, stop_reason=stop or self._stop))
        self._response = None
        self._item = None
        self._transcript = ""
        self._stop = "complete"

    def _assistant_delta(self, text: str, out: list[BidiOutputEvent]) -> None:
        if not text:
            return
        self._start(out)
        self._transcript += text
        out.append(
            BidiTranscriptStreamEvent(
                role="assistant",
                text=text,
                is_final=False,
                current_transcript=self._transcript,
                item_id=self._item,
            )
        )

    def _user_delta(self, transcription: types.Transcription, out: list[BidiOutputEvent]) -> None:
        text = transcription.text or ""
        if text:
            if self._user_item is None:
                self._user_item = f"user_{uuid.uuid4().hex}"
                self._user_text = ""
            self._user_text += text
            out.append(
                BidiTranscriptStreamEvent(
                    role="user",
                    text=text,
                    is_final=False,
                    current_transcript=self._user_text,
                    item_id=self._user_item,
                )
            )
        if transcription.finished:
            self._finish_user(out)

    def _finish_user(self, out: list[BidiOutputEvent]) -> None:
        if self._user_item is None:
            return
        text = self._user_text.strip()
        if text:
            out.append(
                BidiTranscriptStreamEvent(
                    role="user",
                    text=text,
                    is_final=True,
                    current_transcript=text,
                    item_id=self._user_item,
                )
            )
        self._user_item = None
        self._user_text = ""

    # ------------------------------------------------------------------ feed

    def feed(self, message: types.LiveServerMessage) -> list[BidiOutputEvent]:
        """Return the bidi events for one server message, none of its fields dropped.

        Fields without a bidi event (``groundingMetadata``, ``urlContextMetadata``,
        ``executableCode``/``codeExecutionResult`` and ``thought`` parts,
        ``voiceActivity``, ``voiceActivityDetectionSignal``, ``waitingForInput``,
        ``interimInputTranscription``, ``setupComplete``) are logged at debug level.
        ``goAway`` and ``sessionResumptionUpdate`` update :attr:`go_away` and
        :attr:`handle` for the model.
        """
        out: list[BidiOutputEvent] = []
        content = message.server_content
        if content is not None:
            self._server_content(content, out)
        if message.tool_call is not None:
            self._tool_call(message.tool_call, out)
        if message.tool_call_cancellation is not None:
            ids = tuple(message.tool_call_cancellation.ids or ())
            self.cancelled.update(ids)
            if ids:
                out.append(BidiToolCancelEvent(tool_use_ids=ids))
        if message.usage_metadata is not None:
            out.append(usage_event(message.usage_metadata))
        if message.tool_call is not None and self._response is not None:
            self._complete(out, "tool_use")
        if content is not None and (content.turn_complete or _idle(content)):
            self._turn_complete(content, out)
        update = message.session_resumption_update
        if update is not None and update.new_handle and update.resumable is not False:
            self.handle = update.new_handle
        if message.go_away is not None:
            left = parse_duration(message.go_away.time_left)
            self.go_away = left if left is not None else 0.0
        for name in ("voice_activity", "voice_activity_detection_signal", "setup_complete"):
            if getattr(message, name, None) is not None:
                logger.debug("Gemini %s: %r (no bidi event)", name, getattr(message, name))
        return out

    def _server_content(self, content: types.LiveServerContent, out: list[BidiOutputEvent]) -> None:
        if content.input_transcription is not None:
            self._user_delta(content.input_transcription, out)
        if content.interrupted:
            if self._response is not None and self._stop != "interrupted":
                self._stop = "interrupted"
                out.append(BidiInterruptionEvent(reason="user_speech", response_id=self._response))
            else:
                logger.debug("Gemini interrupted with no active response")
        turn = content.model_turn
        for part in (turn.parts or []) if turn is not None else []:
            self._part(part, out)
        if content.output_transcription is not None:
            text = content.output_transcription.text or ""
            if self.text_transcript:
                if text:
                    logger.debug("Gemini output transcription skipped (text transcript): %r", text)
            else:
                self._assistant_delta(text, out)
        for name in (
            "grounding_metadata",
            "url_context_metadata",
            "interim_input_transcription",
            "waiting_for_input",
        ):
            value = getattr(content, name, None)
            if value is not None:
                logger.debug("Gemini serverContent.%s: %r (no bidi event)", name, value)

    def _part(self, part: types.Part, out: list[BidiOutputEvent]) -> None:
        blob = part.inline_data
        if blob is not None and blob.data:
            mime = blob.mime_type or ""
            rate = parse_rate(mime, self.output_sample_rate)
            if (mime.startswith("audio/") or not mime) and not (
                MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
            ):
                out.append(
                    BidiErrorEvent(
                        message=f"Gemini sent audio at {rate} Hz ({mime!r}); it was skipped.",
                        code="malformed_frame",
                        recoverable=True,
                    )
                )
            elif mime.startswith("audio/") or not mime:
                response = self._start(out)
                out.append(
                    BidiAudioStreamEvent(audio=blob.data, sample_rate=rate, response_id=response)
                )
            else:
                logger.debug("Gemini inline data of type %r skipped (no bidi event)", mime)
        if part.text:
            if part.thought:
                logger.debug("Gemini thought part skipped (no bidi event)")
            elif self.text_transcript:
                self._assistant_delta(part.text, out)
            else:
                logger.debug("Gemini text part skipped (output transcription is the transcript)")
        for name in ("executable_code", "code_execution_result", "function_call"):
            if getattr(part, name, None) is not None:
                logger.debug("Gemini part.%s skipped (no bidi event)", name)

    def _tool_call(self, call: types.LiveServerToolCall, out: list[BidiOutputEvent]) -> None:
        for function in call.function_calls or []:
            self._start(out)
            call_id = function.id or f"call_{uuid.uuid4().hex}"
            name = function.name or ""
            self.tool_names[call_id] = name
            args: Any = dict(function.args or {})
            if json_problem(args) is not None:
                # e.g. a NaN the SDK's JSON parser let through: the tool gets the text.
                args = json.dumps(args, default=repr)
            out.append(
                ToolUseStreamEvent(tool_use={"toolUseId": call_id, "name": name, "input": args})
            )

    def _turn_complete(self, content: types.LiveServerContent, out: list[BidiOutputEvent]) -> None:
        reason = _enum_name(content.turn_complete_reason)
        if reason not in _NORMAL_TURN_END:
            out.append(
                BidiErrorEvent(
                    message=f"Gemini ended the turn early: {reason}.",
                    code=reason,
                    recoverable=True,
                    details={"turn_complete_reason": reason},
                )
            )
            if self._response is not None:
                self._complete(out, "error")
            return
        self._complete(out)


def _idle(content: types.LiveServerContent) -> bool:
    status = _enum_name(getattr(content, "interaction_status", None))
    return status == "IDLE"
