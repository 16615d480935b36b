"""A wire-faithful fake of the Gemini Live ``BidiGenerateContent`` WebSocket service.

It listens on 127.0.0.1 over TLS with a throwaway CA (the SDK always speaks
``wss``), speaks the Live API's JSON protocol and is driven by
:class:`bidi_core.testing.ScriptedAssistant`::

    from bidi_gemini_live.testing import serve

    async with serve() as fake:
        model = get_model("gemini_live", **fake.model_kwargs)

What the fake does, like the service:

* The first client frame must be ``setup`` (model ``models/...``); it answers
  ``setupComplete``. Both snake_case and camelCase keys are accepted, because the
  SDK sends a mix. Every server frame is a **binary** WebSocket frame carrying one
  JSON object with only known top-level keys.
* ``sessionResumption`` in the setup enables ``sessionResumptionUpdate`` frames
  (one per :class:`~bidi_core.testing.SessionHandle` action); a later setup with
  that ``handle`` restores the assistant's memory from the snapshot kept for it
  (across connections). An unknown handle, or ``handle: null``, is refused with
  close 1007.
* History: with ``historyConfig.initialHistoryInClientContent`` the server takes
  ``clientContent`` turns until ``turnComplete: true`` without answering; without it,
  ``clientContent`` with ``turnComplete: false`` is taken as history and
  ``turnComplete: true`` makes the model answer. ``clientContent`` after realtime
  input has started is refused with close 1007 (current models take mid-session
  text only as ``realtimeInput.text``).
* Audio answers are ``serverContent.modelTurn`` inline ``audio/pcm;rate=24000``
  parts with ``outputTranscription`` (when requested in the setup) riding on the
  same messages; the last audio message of a turn also carries ``usageMetadata`` and
  ``generationComplete``, then ``turnComplete`` follows. TEXT answers are text parts.
  Input transcription arrives word by word (``finished: true`` on the last word only
  with ``serve(input_transcription_finished=True)``; the service rarely sets it).
* Tool calls are one ``toolCall`` message (with ``usageMetadata``); the
  ``toolResponse`` must carry each call's ``id`` and the function's ``name``
  (a wrong name is refused with close 1007). Withdrawn calls are ``toolCallCancellation``.
* Non-blocking function calling: a declaration with ``behavior: NON_BLOCKING`` does not
  hold the model's answer back (it keeps talking after the ``toolCall``). Each
  ``FunctionResponse`` of such a call is scheduled by its ``scheduling``:
  ``INTERRUPT`` interrupts the current answer (``interrupted: true``) and answers,
  ``WHEN_IDLE`` (the default) answers after it, ``SILENT`` only adds it to the
  context; ``willContinue: true`` marks an intermediate response (the call stays
  open). For blocking calls both fields are ignored, as the service documents.
  Unknown ``behavior`` or ``scheduling`` values are refused with close 1007.

Faults (:class:`~bidi_core.testing.Fault`):

* ``error``: the service reports errors as close frames, and the SDK also reads a
  frame holding only a ``google.rpc.Status`` (``{"code", "message", "status"}``)
  as an error while the socket stays open. The fake sends that status frame
  (``serve(error_signal="close")`` closes with 1011 instead).
* ``disconnect``: the TCP connection is aborted (no close frame).
* ``malformed``: a frame that is not JSON.
* ``time_limit``: ``goAway{timeLeft}`` then, after ``go_away_grace_s``, close 1011
  ``"Deadline expired"``, as the service does at its ~10 minute connection limit.

Tests may also call :meth:`FakeGeminiServer.inject` (send any server message) and
:meth:`FakeGeminiServer.close_connections` (close with a code and reason).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs
import websockets
from websockets.asyncio.server import ServerConnection

from bidi_core.testing import (
    Action,
    AssistantConfig,
    AudioChunk,
    Fault,
    Interrupted,
    LoopbackTLS,
    ResponseComplete,
    ResponseStart,
    ScriptedAssistant,
    SessionHandle,
    ToolCall,
    ToolCancel,
    TranscriptDelta,
    TranscriptFinal,
    Usage,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    loopback_tls,
)
from bidi_core.types import ToolResult, ToolResultContent

from ._wire import DEFAULT_OUTPUT_SAMPLE_RATE, parse_rate

__all__ = ["FakeGeminiServer", "g", "serve"]

logger = logging.getLogger("bidi_gemini_live.testing")

#: The api key the fake's ``model_kwargs`` use (the fake accepts any non-empty key).
FAKE_API_KEY = "fake-key"
#: The service's host name: the fake's TLS certificate is issued for it too.
SERVICE_HOST = "generativelanguage.googleapis.com"
_PATH_PREFIX = "/ws/google.ai.generativelanguage."
_METHODS = (
    "GenerativeService.BidiGenerateContent",
    "GenerativeService.BidiGenerateContentConstrained",
)
_BEHAVIORS = frozenset({"UNSPECIFIED", "BLOCKING", "NON_BLOCKING"})
_SCHEDULINGS = {
    "SCHEDULING_UNSPECIFIED": None,
    "SILENT": "silent",
    "WHEN_IDLE": "when_idle",
    "INTERRUPT": "interrupt",
}
_SERVER_KEYS = frozenset(
    {
        "setupComplete",
        "serverContent",
        "toolCall",
        "toolCallCancellation",
        "usageMetadata",
        "goAway",
        "sessionResumptionUpdate",
        "voiceActivityDetectionSignal",
        "voiceActivity",
    }
)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def g(data: Any, name: str, default: Any = None) -> Any:
    """Return ``data[name]`` in camelCase or snake_case spelling (the SDK sends both)."""
    if not isinstance(data, dict):
        return default
    if name in data:
        return data[name]
    return data.get(_snake(name), default)


def _has(data: Any, name: str) -> bool:
    return isinstance(data, dict) and (name in data or _snake(name) in data)


class _RefusedError(Exception):
    """Close the connection with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@attrs.define
class _Outgoing:
    """A server message being assembled, so one frame can carry several fields."""

    audio: list[dict[str, Any]] = attrs.field(factory=list)
    text: list[str] = attrs.field(factory=list)
    transcription: str | None = None
    usage: dict[str, Any] | None = None
    generation_complete: bool = False

    def empty(self) -> bool:
        return (
            not (self.audio or self.text or self.transcription is not None or self.usage)
            and not self.generation_complete
        )

    def build(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        content: dict[str, Any] = {}
        parts = [{"text": t} for t in self.text] + [{"inlineData": a} for a in self.audio]
        if parts:
            content["modelTurn"] = {"role": "model", "parts": parts}
        if self.transcription is not None:
            content["outputTranscription"] = {"text": self.transcription}
        if self.generation_complete:
            content["generationComplete"] = True
        if content:
            message["serverContent"] = content
        if self.usage is not None:
            message["usageMetadata"] = self.usage
        return message


def _usage(action: Usage) -> dict[str, Any]:
    prompt = action.input_tokens
    response = action.output_tokens
    prompt_details = [
        {"modality": m, "tokenCount": n}
        for m, n in (("TEXT", action.input_text_tokens), ("AUDIO", action.input_audio_tokens))
        if n
    ]
    response_details = [
        {"modality": m, "tokenCount": n}
        for m, n in (("TEXT", action.output_text_tokens), ("AUDIO", action.output_audio_tokens))
        if n
    ]
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "responseTokenCount": response,
        "totalTokenCount": prompt + response,
    }
    if prompt_details:
        usage["promptTokensDetails"] = prompt_details
    if response_details:
        usage["responseTokensDetails"] = response_details
    if action.cached_tokens:
        usage["cachedContentTokenCount"] = action.cached_tokens
    return usage


def _b64(value: Any) -> bytes:
    """Decode proto3 JSON bytes: standard or URL-safe base64, padded or not."""
    text = str(value or "").strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise _RefusedError(1007, "Invalid value at 'data' (TYPE_BYTES): not base64.") from exc


def _tool_result(response: Any, call_id: str) -> ToolResult:
    status = "success"
    value: Any = response
    if isinstance(response, dict):
        if "error" in response:
            status, value = "error", response["error"]
        elif "output" in response:
            value = response["output"]
    item: ToolResultContent = {"text": value} if isinstance(value, str) else {"json": value}
    return {"toolUseId": call_id, "status": status, "content": [item]}  # type: ignore[typeddict-item]


class _Connection:
    """One client connection: setup, history, the reader and the action pump."""

    def __init__(self, server: FakeGeminiServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.assistant = ScriptedAssistant(
            server.assistant_config, connection=len(server.assistants)
        )
        self.setup: dict[str, Any] = {}
        self.audio_mode = True
        self.output_transcription = False
        self.input_transcription = False
        self.resumption = False
        self.transparent = False
        self.vad_signals = False
        self.initial_history = False
        self.history_open = True
        self.history: list[dict[str, Any]] = []
        self.resume: dict[str, Any] | None = None
        self.pending_calls: dict[str, str] = {}
        self.client_index = -1
        self.system_prompt: str | None = None
        self.tools: list[dict[str, Any]] = []
        self._out = _Outgoing()
        self._calls: list[dict[str, Any]] = []
        self._call_usage: dict[str, Any] | None = None
        self.closing = False

    # ------------------------------------------------------------- sending

    async def send(self, message: dict[str, Any]) -> None:
        unknown = set(message) - _SERVER_KEYS
        if unknown:  # pragma: no cover - a bug in the fake itself
            msg = f"The fake would send unknown top-level keys {sorted(unknown)}."
            raise AssertionError(msg)
        await self.ws.send(json.dumps(message).encode())  # binary, like the service

    async def flush(self) -> None:
        if not self._out.empty():
            message, self._out = self._out.build(), _Outgoing()
            await self.send(message)

    # --------------------------------------------------------------- setup

    async def handshake(self) -> None:
        request = self.ws.request
        path = request.path if request is not None else ""
        # google-genai joins its default base URL (with a trailing "/") and "/ws/...":
        # the service takes the doubled slash, so the fake does too.
        route = "/" + path.split("?", 1)[0].lstrip("/")
        if not route.startswith(_PATH_PREFIX) or not route.endswith(_METHODS):
            raise _RefusedError(1008, f"Unknown method {route!r}.")
        headers: dict[str, str] = (
            {k.lower(): v for k, v in request.headers.raw_items()} if request is not None else {}
        )
        self.server.headers.append(headers)
        key = headers.get("x-goog-api-key") or headers.get("authorization")
        if not key:
            raise _RefusedError(
                1008, "Method doesn't allow unregistered callers. Please use API Key."
            )
        frame = await self.ws.recv()
        accepted = self.server.api_keys
        if accepted is not None and key.removeprefix("Bearer ") not in accepted:
            # What the service does with a wrong key: it reads the setup, then closes.
            raise _RefusedError(1007, "API key not valid. Please pass a valid API key.")
        first = self._decode(frame)
        setup = g(first, "setup")
        if not isinstance(setup, dict) or len(first) != 1:
            raise _RefusedError(1007, "The first message must be a setup message.")
        if self.server.reject_setup is not None:
            raise _RefusedError(*self.server.reject_setup)
        self.setup = setup
        self.server.setups.append(setup)
        model = g(setup, "model", "")
        if not isinstance(model, str) or not model.startswith("models/"):
            raise _RefusedError(1007, f"Invalid model name {model!r}.")
        generation = g(setup, "generationConfig", {}) or {}
        modalities = [str(m).upper() for m in g(generation, "responseModalities", ["AUDIO"])]
        self.audio_mode = "AUDIO" in modalities
        self.output_transcription = self.audio_mode and _has(setup, "outputAudioTranscription")
        self.input_transcription = _has(setup, "inputAudioTranscription")
        self.vad_signals = bool(g(setup, "explicitVadSignal", False))
        if _has(setup, "sessionResumption"):
            resumption = g(setup, "sessionResumption") or {}
            self.resumption = True
            self.transparent = bool(g(resumption, "transparent", False))
            if "handle" in resumption and resumption["handle"] is None:
                raise _RefusedError(1007, "sessionResumption.handle must not be null.")
            handle = g(resumption, "handle")
            if handle is not None:
                snapshot = self.server.snapshots.get(handle)
                if snapshot is None:
                    raise _RefusedError(1007, "Invalid session resumption handle.")
                self.resume = snapshot
        self.initial_history = bool(
            g(g(setup, "historyConfig", {}) or {}, "initialHistoryInClientContent", False)
        )
        instruction = g(setup, "systemInstruction")
        if isinstance(instruction, dict):
            texts = [p.get("text", "") for p in g(instruction, "parts", []) if isinstance(p, dict)]
            self.system_prompt = "".join(texts) or None
        elif isinstance(instruction, str):
            self.system_prompt = instruction
        for tool in g(setup, "tools", []) or []:
            for decl in g(tool, "functionDeclarations", []) or []:
                schema = g(decl, "parametersJsonSchema") or g(decl, "parameters") or {}
                spec: dict[str, Any] = {
                    "name": decl["name"],
                    "description": g(decl, "description", ""),
                    "inputSchema": {"json": schema},
                }
                behavior = g(decl, "behavior")
                if behavior is not None and str(behavior).upper() not in _BEHAVIORS:
                    raise _RefusedError(1007, f"Invalid value at 'behavior': {behavior!r}.")
                if str(behavior).upper() == "NON_BLOCKING":
                    spec["blocking"] = False
                self.tools.append(spec)
        self._start_assistant()
        await self.send({"setupComplete": {}})

    def _start_assistant(self) -> None:
        self.assistant.start(
            system_prompt=self.system_prompt,
            tools=self.tools,  # type: ignore[arg-type]
            messages=self.history,  # type: ignore[arg-type]
            resume=self.resume,
        )

    def _decode(self, frame: str | bytes) -> dict[str, Any]:
        try:
            data = json.loads(frame)
        except ValueError as exc:
            raise _RefusedError(1007, "Invalid JSON payload received.") from exc
        if not isinstance(data, dict):
            raise _RefusedError(1007, "Invalid JSON payload received.")
        self.server.received.append(data)
        return data

    # ------------------------------------------------------------- reading

    async def read(self) -> None:
        async for frame in self.ws:
            message = self._decode(frame)
            self.client_index += 1
            if len(message) != 1:
                raise _RefusedError(1007, "A client message must hold exactly one field.")
            if _has(message, "realtimeInput"):
                self._realtime(g(message, "realtimeInput") or {})
            elif _has(message, "toolResponse"):
                self._tool_response(g(message, "toolResponse") or {})
            elif _has(message, "clientContent"):
                self._client_content(g(message, "clientContent") or {})
            elif _has(message, "setup"):
                raise _RefusedError(1007, "setup may only be sent once.")
            else:
                raise _RefusedError(1007, f"Unknown client message {sorted(message)}.")

    def _end_history(self) -> None:
        if self.history_open:
            self.history_open = False
            if self.history:
                self._start_assistant()

    def _realtime(self, data: dict[str, Any]) -> None:
        if self.initial_history and self.history_open:
            raise _RefusedError(
                1007, "Send the initial history (clientContent) before realtime input."
            )
        self._end_history()
        if len(data) != 1:
            raise _RefusedError(1007, "realtimeInput must hold exactly one field.")
        if _has(data, "audio"):
            blob = g(data, "audio") or {}
            mime = str(g(blob, "mimeType", ""))
            if not mime.startswith("audio/pcm"):
                raise _RefusedError(1007, f"Unsupported audio mime type {mime!r}.")
            pcm = _b64(g(blob, "data", ""))
            self.assistant.user_audio(pcm, parse_rate(mime, 16000))
        elif _has(data, "video") or _has(data, "mediaChunks"):
            blobs = [g(data, "video")] if _has(data, "video") else list(g(data, "mediaChunks"))
            for blob in blobs:
                image = _b64(g(blob, "data", ""))
                self.assistant.user_image(image, str(g(blob, "mimeType", "")))
        elif _has(data, "text"):
            self.assistant.user_text(str(g(data, "text")))
        elif _has(data, "audioStreamEnd") or _has(data, "activityEnd"):
            self.assistant.end_of_audio()
        elif _has(data, "activityStart"):
            pass
        else:
            raise _RefusedError(1007, f"Unknown realtimeInput field {sorted(data)}.")

    def _tool_response(self, data: dict[str, Any]) -> None:
        self._end_history()
        for response in g(data, "functionResponses", []) or []:
            call_id = g(response, "id")
            name = g(response, "name")
            expected = self.pending_calls.get(call_id) if call_id else None
            if expected is None:
                raise _RefusedError(1007, f"No pending function call with id {call_id!r}.")
            if name != expected:
                raise _RefusedError(
                    1007, f"FunctionResponse name {name!r} does not match the call {expected!r}."
                )
            result = _tool_result(g(response, "response", {}), call_id)
            scheduling = g(response, "scheduling")
            if scheduling is not None and str(scheduling).upper() not in _SCHEDULINGS:
                raise _RefusedError(1007, f"Invalid value at 'scheduling': {scheduling!r}.")
            non_blocking = any(t["name"] == name and t.get("blocking") is False for t in self.tools)
            if non_blocking and g(response, "willContinue"):
                result["progress"] = True
            else:
                del self.pending_calls[call_id]
            if non_blocking and _SCHEDULINGS.get(str(scheduling).upper()):
                result["scheduling"] = _SCHEDULINGS[str(scheduling).upper()]  # type: ignore[typeddict-item]
            self.assistant.tool_result(call_id, result)

    def _client_content(self, data: dict[str, Any]) -> None:
        if not self.history_open:
            raise _RefusedError(
                1007, "clientContent is not accepted mid-session; send realtimeInput.text."
            )
        for turn in g(data, "turns", []) or []:
            role = "assistant" if g(turn, "role") == "model" else "user"
            texts = [p["text"] for p in g(turn, "parts", []) if isinstance(p, dict) and "text" in p]
            self.history.append({"role": role, "content": [{"text": t} for t in texts]})
        if g(data, "turnComplete", False):
            self._end_history()
            if not self.initial_history:
                # Without historyConfig a complete turn asks the model to answer it.
                last = self.history[-1] if self.history else None
                if last is not None and last["role"] == "user" and last["content"]:
                    self.assistant.user_text(last["content"][-1]["text"])

    # ------------------------------------------------------------- actions

    async def pump(self) -> None:
        async for action in self.assistant.actions():
            await self.on_action(action)

    async def on_action(self, action: Action) -> None:
        out = self._out
        match action:
            case ResponseStart() | TranscriptFinal():
                pass
            case TranscriptDelta():
                if not self.audio_mode:
                    await self.flush()
                    self._out.text.append(action.text)
                    await self.flush()
                elif self.output_transcription:
                    if out.transcription is not None:
                        await self.flush()
                    self._out.transcription = action.text
            case AudioChunk():
                if self.audio_mode:
                    if out.audio:
                        await self.flush()
                    self._out.audio.append(
                        {
                            "mimeType": f"audio/pcm;rate={DEFAULT_OUTPUT_SAMPLE_RATE}",
                            "data": base64.b64encode(action.pcm).decode(),
                        }
                    )
            case Usage():
                if self._calls or self._call_usage is not None:
                    self._call_usage = _usage(action)
                else:
                    if out.usage is not None:
                        await self.flush()
                    self._out.usage = _usage(action)
            case ToolCall():
                await self.flush()
                self._calls.append(
                    {"id": action.tool_use_id, "name": action.name, "args": action.input}
                )
                self.pending_calls[action.tool_use_id] = action.name
            case ResponseComplete(stop_reason="tool_use"):
                await self.flush()
                message: dict[str, Any] = {"toolCall": {"functionCalls": self._calls}}
                if self._call_usage is not None:
                    message["usageMetadata"] = self._call_usage
                self._calls, self._call_usage = [], None
                await self.send(message)
            case ResponseComplete(stop_reason="interrupted"):
                await self.flush()
                await self.send({"serverContent": {"turnComplete": True}})
            case ResponseComplete():
                self._out.generation_complete = True
                await self.flush()
                await self.send({"serverContent": {"turnComplete": True}})
            case Interrupted():
                self._out = _Outgoing()  # what was not sent yet is dropped
                await self.send({"serverContent": {"interrupted": True}})
            case ToolCancel():
                await self.flush()
                for call_id in action.tool_use_ids:
                    self.pending_calls.pop(call_id, None)
                await self.send({"toolCallCancellation": {"ids": list(action.tool_use_ids)}})
            case UserTranscript():
                await self.flush()
                if self.input_transcription:
                    words = action.text.split(" ")
                    for index, word in enumerate(words):
                        last = index == len(words) - 1
                        chunk: dict[str, Any] = {"text": word if last else word + " "}
                        if last and self.server.input_transcription_finished:
                            chunk["finished"] = True
                        await self.send({"serverContent": {"inputTranscription": chunk}})
            case UserSpeechStarted() | UserSpeechStopped():
                if self.vad_signals:
                    kind = (
                        "ACTIVITY_START"
                        if isinstance(action, UserSpeechStarted)
                        else "ACTIVITY_END"
                    )
                    await self.send({"voiceActivity": {"voiceActivityType": kind}})
            case SessionHandle():
                await self.flush()
                if self.resumption:
                    self.server.snapshots[action.handle] = self.assistant.snapshot()
                    update: dict[str, Any] = {"newHandle": action.handle, "resumable": True}
                    if self.transparent:
                        update["lastConsumedClientMessageIndex"] = self.client_index
                    await self.send({"sessionResumptionUpdate": update})
            case Fault():
                await self.flush()
                await self.fault(action)

    async def fault(self, action: Fault) -> None:
        if action.kind == "error":
            if self.server.error_signal == "close":
                raise _RefusedError(1011, f"Internal error encountered. ({action.message})")
            status = {"code": 503, "message": action.message, "status": "UNAVAILABLE"}
            await self.ws.send(json.dumps(status).encode())
        elif action.kind == "malformed":
            await self.ws.send(b"\x00\x01 this is not JSON {")
        elif action.kind == "disconnect":
            self.abort()
        else:
            seconds = self.server.go_away_grace_s
            await self.send({"goAway": {"timeLeft": f"{seconds:g}s"}})
            await asyncio.sleep(seconds)
            raise _RefusedError(1011, "Deadline expired before operation could complete.")

    def abort(self) -> None:
        self.closing = True
        transport = self.ws.transport
        if transport is not None:
            transport.abort()


@attrs.define(eq=False)
class FakeGeminiServer:
    """A running fake Gemini Live service (satisfies :class:`bidi_core.testing.FakeServer`).

    Attributes:
        model_kwargs: ``client_config`` reaching this fake (api key ``"fake-key"``,
            ``base_url``, and the throwaway CA as ``async_client_args={"ssl": ctx}``).
        assistants: One :class:`~bidi_core.testing.ScriptedAssistant` per connection.
        received: Every decoded client frame, in order, across connections.
        setups: The ``setup`` of every connection.
        headers: The HTTP request headers of every connection.
        snapshots: Resumption handle -> assistant memory, kept across connections.
    """

    model_kwargs: dict[str, Any]
    assistant_config: AssistantConfig
    input_transcription_finished: bool = False
    error_signal: str = "frame"
    go_away_grace_s: float = 2.0
    reject_setup: tuple[int, str] | None = None
    stall_handshake: bool = False
    api_keys: frozenset[str] | None = None
    tls: LoopbackTLS | None = None
    assistants: list[ScriptedAssistant] = attrs.field(factory=list)
    received: list[Any] = attrs.field(factory=list)
    setups: list[dict[str, Any]] = attrs.field(factory=list)
    headers: list[dict[str, str]] = attrs.field(factory=list)
    snapshots: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    _connections: list[_Connection] = attrs.field(factory=list)

    async def handle(self, ws: ServerConnection) -> None:
        conn = _Connection(self, ws)
        self._connections.append(conn)
        pump: asyncio.Task[None] | None = None
        reader: asyncio.Task[None] | None = None
        try:
            if self.stall_handshake:
                await ws.wait_closed()  # take the setup, never answer setupComplete
                return
            await conn.handshake()
            self.assistants.append(conn.assistant)
            pump = asyncio.create_task(conn.pump())
            reader = asyncio.create_task(conn.read())
            done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise _RefusedError from either side
        except _RefusedError as refused:
            with contextlib.suppress(Exception):
                await ws.close(refused.code, refused.reason)
        except websockets.ConnectionClosed:
            pass
        finally:
            conn.assistant.close()
            for side in (pump, reader):
                if side is not None and not side.done():
                    side.cancel()
                    with contextlib.suppress(BaseException):
                        await side
                elif side is not None and not side.cancelled():
                    side.exception()
            if conn in self._connections:
                self._connections.remove(conn)

    @property
    def ca_path(self) -> str:
        """The throwaway CA (PEM file) the fake's certificate chains to (for ``SSL_CERT_FILE``)."""
        assert self.tls is not None
        return str(self.tls.ca_path)

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        base_url = self.model_kwargs["client_config"]["http_options"]["base_url"]
        return int(base_url.rsplit(":", 1)[1])

    async def inject(self, message: dict[str, Any], *, raw: bool = False) -> None:
        """Send *message* to the newest connection (``raw=True`` skips the key check)."""
        conn = self._connections[-1]
        if raw:
            await conn.ws.send(json.dumps(message).encode())
        else:
            await conn.send(message)

    async def close_connections(self, code: int, reason: str = "") -> None:
        """Close every open connection with a WebSocket close *code* and *reason*."""
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code, reason)


@contextlib.asynccontextmanager
async def serve(
    *, assistant_config: AssistantConfig | None = None, **options: Any
) -> AsyncIterator[FakeGeminiServer]:
    """Run a fake Gemini Live service on 127.0.0.1 until the context exits.

    Args:
        assistant_config: Behaviour of each connection's scripted assistant.
        **options: ``input_transcription_finished`` (bool, default False),
            ``error_signal`` (``"frame"`` or ``"close"``), ``go_away_grace_s``
            (float, default 2.0: goAway timeLeft and the delay before the close),
            ``reject_setup`` (``(code, reason)``: close every setup with it),
            ``stall_handshake`` (bool: accept the WebSocket, never send ``setupComplete``),
            ``api_keys`` (the keys accepted, default any non-empty key; a wrong one gets
            close 1007 ``"API key not valid. Please pass a valid API key."`` after the
            setup, as the service does).

    The certificate (from a throwaway CA, ``fake.ca_path``) is issued for 127.0.0.1
    and for the service's host name, ``generativelanguage.googleapis.com``, so a
    client with the default URL reaches the fake through
    :func:`bidi_core.testing.resolve_to_loopback`.

    Yields:
        The running :class:`FakeGeminiServer`.
    """
    accepted = {
        "input_transcription_finished",
        "error_signal",
        "go_away_grace_s",
        "reject_setup",
        "stall_handshake",
        "api_keys",
    }
    unknown = set(options) - accepted
    if unknown:
        msg = f"Unknown serve() option(s) {sorted(unknown)}; accepted: {sorted(accepted)}."
        raise TypeError(msg)
    if options.get("error_signal", "frame") not in ("frame", "close"):
        msg = f"error_signal must be 'frame' or 'close', got {options['error_signal']!r}."
        raise ValueError(msg)
    tls = loopback_tls(hostnames=(SERVICE_HOST,))
    keys = options.pop("api_keys", None)
    fake = FakeGeminiServer(
        model_kwargs={},
        assistant_config=assistant_config or AssistantConfig(),
        api_keys=None if keys is None else frozenset(keys),
        tls=tls,
        **options,
    )
    async with websockets.serve(
        fake.handle, "127.0.0.1", 0, ssl=tls.server_context, max_size=None, compression=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.model_kwargs = {
            "client_config": {
                "api_key": FAKE_API_KEY,
                "http_options": {
                    "base_url": f"https://127.0.0.1:{port}",
                    "api_version": "v1beta",
                    "async_client_args": {"ssl": tls.client_context},
                },
            }
        }
        try:
            yield fake
        finally:
            for conn in list(fake._connections):
                conn.abort()
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
