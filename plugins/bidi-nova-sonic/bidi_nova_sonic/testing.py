"""A wire-faithful fake of Bedrock's ``InvokeModelWithBidirectionalStream`` for Nova Sonic.

It serves HTTP/2 over TLS (ALPN ``h2``, a throwaway CA) on 127.0.0.1 with the
``h2`` package, so the real client stack runs unchanged: ``aws_sdk_bedrock_runtime``,
SigV4, event signing and framing, and the awscrt transport::

    from bidi_nova_sonic.testing import serve

    async with serve() as fake:
        model = get_model("nova_sonic", **fake.model_kwargs)

What it checks and does, per HTTP/2 stream (one Nova connection):

* the ``POST /model/<id>/invoke-with-bidirectional-stream`` request, its SigV4
  ``Authorization`` header (recomputed from the headers received, with the
  secret of the named access key) and the per-event signature chain of every
  signed frame (``:date`` / ``:chunk-signature``);
* decodes each frame (outer signed envelope -> inner ``chunk`` event -> base64 JSON)
  and validates the Nova event order and bookkeeping (``promptName`` /
  ``contentName``, history before interactive input, first history message USER,
  tool schemas as JSON strings, audio formats); a violation is recorded in
  :attr:`FakeNovaServer.protocol_errors` and answered with a ``validationException``;
* drives a fresh :class:`~bidi_core.testing.ScriptedAssistant` and answers with
  event-stream ``chunk`` events the way Nova does (SPECULATIVE text, AUDIO,
  FINAL text, TOOL, ``usageEvent`` with cumulative totals and deltas, barge-in as
  ``contentEnd.stopReason = INTERRUPTED`` plus the ``{ "interrupted" : true }`` text);
* respects HTTP/2 flow control both ways (acknowledges received data, sends within
  the peer's window and frame size).

Faults (the assistant's ``[fault:...]`` phrases) map to Nova's real signals:

* ``time_limit`` -> a ``modelTimeoutException`` message, then the response ends
  (``END_STREAM``, then ``RST_STREAM(NO_ERROR)`` as an HTTP/2 server does when the
  request body is unfinished);
* ``error`` -> a ``validationException`` message, which ends the stream the same way
  (Bedrock stream exceptions are terminal); the model recovers by reconnecting;
* ``disconnect`` -> the TCP connection is dropped without a TLS close or GOAWAY;
* ``malformed`` -> a ``chunk`` whose bytes are not JSON (``malformed="event"``, the
  default) or a frame with a broken CRC (``malformed="frame"``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import quote, unquote

import attrs
import boto3
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from bidi_core.testing import AssistantConfig, ScriptedAssistant, loopback_tls
from bidi_core.testing import _assistant as sa
from bidi_core.types import Messages, ToolSpec

from . import _eventstream as es
from ._wire import INTERRUPTED_MARKER, decode_tool_result

__all__ = [
    "FAKE_ACCESS_KEY",
    "FAKE_REGION",
    "FAKE_SECRET_KEY",
    "FakeNovaServer",
    "RequestRecord",
    "serve",
]

logger = logging.getLogger("bidi_nova_sonic.testing")

#: Static fake credentials the fake accepts (never real ones).
FAKE_ACCESS_KEY = "AKIDFAKENOVASONIC0001"
FAKE_SECRET_KEY = "fake-secret-key-for-the-nova-sonic-fake"
FAKE_REGION = "us-east-1"

_PATH_RE = re.compile(r"^/model/(?P<model>[^/]+)/invoke-with-bidirectional-stream$")
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<sig>[0-9a-f]+)"
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
#: What the service says for each credentials error (the AWS JSON error shape).
_AUTH_MESSAGES = {
    "MissingAuthenticationTokenException": "Missing Authentication Token",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "InvalidSignatureException": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    ),
}
_CHUNK_HEADERS = {
    ":message-type": "event",
    ":event-type": "chunk",
    ":content-type": "application/json",
}


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


@attrs.define
class RequestRecord:
    """What the fake saw of one stream (one Nova connection).

    Attributes:
        path: The ``:path`` as sent (model id URL-encoded).
        model_id: The model id from the path.
        headers: Request headers (lower-case names; the Authorization value included).
        access_key: The access key id named by the SigV4 ``Authorization`` header.
        region: The region of the SigV4 credential scope.
        service: The signing name of the credential scope (``bedrock``).
        signature_valid: Whether the request signature matched the named key's secret.
        events: Every decoded Nova event of this stream, in order.
        signed_frames: How many signed event frames were verified in the chain.
    """

    path: str
    model_id: str
    headers: dict[str, str]
    access_key: str | None = None
    region: str | None = None
    service: str | None = None
    signature_valid: bool = False
    events: list[dict[str, Any]] = attrs.field(factory=list)
    signed_frames: int = 0


class _H2Peer:
    """One TCP/TLS connection speaking HTTP/2 as a server."""

    def __init__(self, server: FakeNovaServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.sessions: dict[int, _Session] = {}
        self.window = asyncio.Event()
        #: Received bytes per stream not acknowledged yet (FakeNovaServer.window_updates).
        self.owed: dict[int, int] = {}
        self.closed = False

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, RuntimeError):
                self.closed = True

    def write_pending(self) -> None:
        """Hand what h2 has to send to the socket without waiting for it to drain.

        The reading loop must not wait on the socket: a client slow to read the
        output would stop the server taking its input (a real service reads on).
        """
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)

    async def send_data(self, stream_id: int, data: bytes) -> bool:
        """Send *data* on *stream_id* within flow control; False if the stream is gone."""
        view = memoryview(data)
        while view:
            if self.closed:
                return False
            try:
                window = self.conn.local_flow_control_window(stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return False
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            if size <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            try:
                self.conn.send_data(stream_id, bytes(view[:size]))
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return False
            view = view[size:]
            await self.flush()
        return True

    async def end_stream(self, stream_id: int, *, reset: bool) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.conn.end_stream(stream_id)
        if reset:
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        await self.flush()

    def abort(self) -> None:
        """Drop the TCP connection abruptly (no TLS close_notify, no GOAWAY)."""
        self.closed = True
        self.window.set()
        transport = self.writer.transport
        transport.abort()


class _Content:
    __slots__ = ("interactive", "kind", "name", "parts", "rate", "role", "tool_use_id")

    def __init__(self, name: str, kind: str, role: str, interactive: bool) -> None:
        self.name = name
        self.kind = kind
        self.role = role
        self.interactive = interactive
        self.parts: list[str] = []
        self.rate = 16000
        self.tool_use_id = ""


class _ProtocolError(Exception):
    pass


class _Session:
    """One Nova session: decodes client frames, validates them, drives the assistant."""

    def __init__(
        self, peer: _H2Peer, stream_id: int, record: RequestRecord, secret: str | None
    ) -> None:
        self.peer = peer
        self.server = peer.server
        self.stream_id = stream_id
        self.record = record
        self.secret = secret
        self.decoder = es.MessageDecoder()
        self.prior_signature = ""
        self.assistant = ScriptedAssistant(
            self.server.assistant_config, connection=len(self.server.assistants)
        )
        self.session_id = str(uuid.uuid4())
        self.phase = "new"  # new -> session -> prompt -> ended
        self.prompt_name: str | None = None
        self.contents: dict[str, _Content] = {}
        self.used_names: set[str] = set()
        self.system_prompt: str | None = None
        self.tools: list[ToolSpec] = []
        self.history: Messages = []
        self.interactive_started = False
        self.output_rate = 24000
        self.voice = ""
        self.pump: asyncio.Task[None] | None = None
        self.ended = False
        self.input_done = False
        # Output state of the response being rendered.
        self.completion_id = ""
        self.audio_content: str | None = None
        self.final_content: str | None = None
        self.spoken: list[str] = []
        self.totals = {"input": [0, 0], "output": [0, 0]}  # [speech, text]

    # ------------------------------------------------------------- input

    def feed(self, data: bytes) -> None:
        if self.ended and self.phase != "ended":
            return
        try:
            for outer in self.decoder.feed(data):
                self._on_signed_frame(outer)
                if self.ended and self.phase != "ended":
                    return  # after sessionEnd only the signed empty frame is still due
        except es.EventStreamError as exc:
            self._fail(f"Undecodable request frame: {exc}")
        except _ProtocolError as exc:
            self._fail(str(exc))

    def _verify_chain(self, outer: es.Message) -> None:
        date = outer.headers.get(":date")
        signature = outer.headers.get(":chunk-signature")
        if not isinstance(date, datetime.datetime) or not isinstance(signature, bytes):
            msg = "A request frame lacks its :date / :chunk-signature headers."
            raise _ProtocolError(msg)
        if self.secret is None or not self.server.verify_signatures:
            return
        stamp = date.strftime(_TIMESTAMP)
        scope = f"{stamp[:8]}/{self.record.region}/{self.record.service}/aws4_request"
        date_header = es.header_bytes(outer.raw_headers, ":date")
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                stamp,
                scope,
                self.prior_signature,
                hashlib.sha256(date_header).hexdigest(),
                hashlib.sha256(outer.payload).hexdigest(),
            )
        )
        key = _signing_key(
            self.secret, stamp[:8], str(self.record.region), str(self.record.service)
        )
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            number = self.record.signed_frames + 1
            msg = f"Event signature {number} does not continue the SigV4 chain."
            raise _ProtocolError(msg)
        self.prior_signature = signature.hex()
        self.record.signed_frames += 1

    def _on_signed_frame(self, outer: es.Message) -> None:
        self._verify_chain(outer)
        if not outer.payload:
            self.input_done = True  # the signed empty frame that ends the input
            return
        inner = es.decode_message(outer.payload)
        if inner.headers.get(":event-type") != "chunk":
            msg = f"Unexpected input event type {inner.headers.get(':event-type')!r}."
            raise _ProtocolError(msg)
        wrapper = json.loads(inner.payload)
        event = json.loads(base64.b64decode(wrapper["bytes"]))
        self.server.received.append(event)
        self.record.events.append(event)
        if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
            msg = "A Nova input chunk must be {'event': {...}}."
            raise _ProtocolError(msg)
        ((name, body),) = event["event"].items()
        self._on_event(name, body)

    def _need_prompt(self, body: dict[str, Any], name: str) -> None:
        if self.phase != "prompt":
            msg = f"{name} arrived before promptStart (or after promptEnd)."
            raise _ProtocolError(msg)
        if body.get("promptName") != self.prompt_name:
            msg = f"{name} names promptName {body.get('promptName')!r}, not {self.prompt_name!r}."
            raise _ProtocolError(msg)

    def _open_content(self, body: dict[str, Any], name: str, kind: str) -> _Content:
        self._need_prompt(body, name)
        content = self.contents.get(str(body.get("contentName")))
        if content is None:
            msg = f"{name} names contentName {body.get('contentName')!r}, which is not open."
            raise _ProtocolError(msg)
        if content.kind != kind:
            msg = f"{name} sent into a {content.kind} content."
            raise _ProtocolError(msg)
        return content

    def _on_event(self, name: str, body: dict[str, Any]) -> None:
        if name == "sessionStart":
            if self.phase != "new":
                msg = "sessionStart must be the first event, once."
                raise _ProtocolError(msg)
            if "turnDetectionConfiguration" in body and "nova-2-sonic" not in self.record.model_id:
                msg = f"turnDetectionConfiguration is not supported by {self.record.model_id}."
                raise _ProtocolError(msg)
            if not isinstance(body.get("inferenceConfiguration"), dict):
                msg_0 = "sessionStart needs inferenceConfiguration."
                raise _ProtocolError(msg_0)
            self.phase = "session"
        elif name == "promptStart":
            self._on_prompt_start(body)
        elif name == "contentStart":
            self._on_content_start(body)
        elif name == "textInput":
            content = self._open_content(body, name, "TEXT")
            if not isinstance(body.get("content"), str):
                msg_0 = "textInput content must be a string."
                raise _ProtocolError(msg_0)
            content.parts.append(body["content"])
        elif name == "audioInput":
            content = self._open_content(body, name, "AUDIO")
            pcm = base64.b64decode(body.get("content", ""), validate=True)
            self.assistant.user_audio(pcm, content.rate)
        elif name == "toolResult":
            content = self._open_content(body, name, "TOOL")
            if not isinstance(body.get("content"), str):
                msg_0 = "toolResult content must be a JSON string."
                raise _ProtocolError(msg_0)
            content.parts.append(body["content"])
        elif name == "contentEnd":
            self._on_content_end(body)
        elif name == "promptEnd":
            self._need_prompt(body, name)
            if self.contents:
                msg = f"promptEnd while content {sorted(self.contents)} is still open."
                raise _ProtocolError(msg)
            self.phase = "session"
        elif name == "sessionEnd":
            if self.phase == "prompt":
                msg_0 = "sessionEnd before promptEnd."
                raise _ProtocolError(msg_0)
            self.phase = "ended"
            self.server.session_ends += 1
            self.close_output(reset=False)  # the client still closes its half (empty frame)
        else:
            msg = f"Unknown Nova input event {name!r}."
            raise _ProtocolError(msg)

    def _on_prompt_start(self, body: dict[str, Any]) -> None:
        if self.phase != "session" or self.prompt_name is not None:
            msg = "promptStart must follow sessionStart, once."
            raise _ProtocolError(msg)
        name = body.get("promptName")
        if not isinstance(name, str) or not name:
            msg = "promptStart needs a promptName."
            raise _ProtocolError(msg)
        self.prompt_name = name
        audio = body.get("audioOutputConfiguration") or {}
        rate = audio.get("sampleRateHertz", 24000)
        if rate not in (8000, 16000, 24000) or audio.get("sampleSizeBits", 16) != 16:
            msg = f"Unsupported audioOutputConfiguration {audio!r}."
            raise _ProtocolError(msg)
        self.output_rate = rate
        self.voice = str(audio.get("voiceId", ""))
        tools: list[ToolSpec] = []
        for item in (body.get("toolConfiguration") or {}).get("tools", []):
            spec = item.get("toolSpec", {})
            schema = spec.get("inputSchema", {}).get("json")
            if not isinstance(schema, str):
                msg = f"toolSpec {spec.get('name')!r} inputSchema.json must be a JSON string."
                raise _ProtocolError(msg)
            tools.append(
                {
                    "name": spec["name"],
                    "description": spec.get("description", ""),
                    "inputSchema": {"json": json.loads(schema)},
                }
            )
        self.tools = tools
        self.phase = "prompt"
        self.assistant.config = attrs.evolve(self.assistant.config, output_sample_rate=rate)
        self.assistant.start(tools=tools)
        self.pump = asyncio.create_task(self._pump(), name="fake-nova-pump")
        self.server.tasks.add(self.pump)
        self.pump.add_done_callback(self.server.tasks.discard)

    def _begin_interactive(self) -> None:
        if not self.interactive_started:
            self.interactive_started = True
            self.assistant.start(
                system_prompt=self.system_prompt, tools=self.tools, messages=self.history
            )

    def _on_content_start(self, body: dict[str, Any]) -> None:
        self._need_prompt(body, "contentStart")
        name = body.get("contentName")
        if not isinstance(name, str) or not name or name in self.used_names:
            msg = f"contentStart needs a new unique contentName (got {name!r})."
            raise _ProtocolError(msg)
        kind = body.get("type")
        role = body.get("role")
        interactive = body.get("interactive")
        if kind not in ("TEXT", "AUDIO", "TOOL") or not isinstance(interactive, bool):
            msg = f"contentStart needs type TEXT/AUDIO/TOOL and a bool interactive: {body!r}."
            raise _ProtocolError(msg)
        content = _Content(name, kind, str(role), interactive)
        if kind == "TEXT":
            if role not in ("SYSTEM", "USER", "ASSISTANT", "SYSTEM_SPEECH"):
                msg = f"Unknown TEXT role {role!r}."
                raise _ProtocolError(msg)
            if not interactive and self.interactive_started:
                msg_0 = "History and system prompt must come before interactive input."
                raise _ProtocolError(msg_0)
            if role == "SYSTEM" and (self.history or self.system_prompt is not None):
                msg_0 = "The SYSTEM prompt must come once, before history."
                raise _ProtocolError(msg_0)
            if not interactive and role == "ASSISTANT" and not self.history:
                msg_0 = "The first history message must have role USER."
                raise _ProtocolError(msg_0)
            if interactive and role != "USER":
                msg_0 = "Interactive text must have role USER."
                raise _ProtocolError(msg_0)
        elif kind == "AUDIO":
            config = body.get("audioInputConfiguration") or {}
            if (
                role != "USER"
                or not interactive
                or config.get("mediaType") != "audio/lpcm"
                or config.get("sampleRateHertz") not in (8000, 16000)
                or config.get("sampleSizeBits") != 16
                or config.get("channelCount") != 1
            ):
                msg = f"Unsupported AUDIO contentStart {body!r}."
                raise _ProtocolError(msg)
            if any(c.kind == "AUDIO" for c in self.contents.values()):
                msg_0 = "Only one AUDIO content may be open."
                raise _ProtocolError(msg_0)
            content.rate = config["sampleRateHertz"]
        else:
            config = body.get("toolResultInputConfiguration") or {}
            if role != "TOOL" or not config.get("toolUseId"):
                msg = f"TOOL contentStart needs role TOOL and a toolUseId: {body!r}."
                raise _ProtocolError(msg)
            content.tool_use_id = str(config["toolUseId"])
        if interactive or kind != "TEXT":
            self._begin_interactive()
        self.used_names.add(name)
        self.contents[name] = content

    def _on_content_end(self, body: dict[str, Any]) -> None:
        self._need_prompt(body, "contentEnd")
        content = self.contents.pop(str(body.get("contentName")), None)
        if content is None:
            msg = f"contentEnd for contentName {body.get('contentName')!r}, which is not open."
            raise _ProtocolError(msg)
        text = "".join(content.parts)
        if content.kind == "AUDIO":
            self.assistant.end_of_audio()
        elif content.kind == "TOOL":
            self.assistant.tool_result(
                content.tool_use_id, decode_tool_result(content.tool_use_id, text)
            )
        elif content.role == "SYSTEM":
            self.system_prompt = text
        elif not content.interactive:
            role: Literal["user", "assistant"] = "user" if content.role == "USER" else "assistant"
            self.history.append({"role": role, "content": [{"text": text}]})
        elif content.role == "USER":
            self.assistant.user_text(text)

    def client_ended(self) -> None:
        """The client half-closed its side (END_STREAM)."""
        self.input_done = True
        self.close_output()

    # ------------------------------------------------------------ output

    def _fail(self, message: str) -> None:
        self.server.protocol_errors.append(message)
        logger.debug("fake nova protocol error: %s", message)
        self.spawn(self._send_exception("validationException", message))

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def close_output(self, *, reset: bool = True) -> None:
        """End the response stream (and reset it if the client is still sending)."""
        if self.ended:
            return
        self.ended = True
        self.assistant.close()
        self.spawn(self.peer.end_stream(self.stream_id, reset=reset and not self.input_done))

    async def _send_event(self, name: str, body: dict[str, Any]) -> bool:
        if self.ended:
            return False
        inner = json.dumps({"event": {name: body}}, separators=(",", ":")).encode("utf-8")
        payload = json.dumps({"bytes": base64.b64encode(inner).decode("ascii")}).encode("ascii")
        return await self.peer.send_data(self.stream_id, es.encode_message(_CHUNK_HEADERS, payload))

    async def _send_exception(self, kind: str, message: str) -> None:
        if self.ended:
            return
        # The service drops input from the moment it ends the session, not from when
        # its exception has gone out.
        self.ended = True
        self.assistant.close()
        frame = es.encode_message(
            {
                ":message-type": "exception",
                ":exception-type": kind,
                ":content-type": "application/json",
            },
            json.dumps({"message": message}).encode("utf-8"),
        )
        await self.peer.send_data(self.stream_id, frame)
        await self.peer.end_stream(self.stream_id, reset=not self.input_done)

    async def inject_exception(self, kind: str, message: str) -> None:
        """Send a stream exception (e.g. ``throttlingException``) and end the stream."""
        await self._send_exception(kind, message)

    def _ids(self, content_id: str | None = None) -> dict[str, Any]:
        ids = {
            "sessionId": self.session_id,
            "promptName": self.prompt_name,
            "completionId": self.completion_id,
        }
        if content_id is not None:
            ids["contentId"] = content_id
        return ids

    async def _content(self, kind: str, role: str, stage: str | None = None) -> str:
        content_id = str(uuid.uuid4())
        body = {**self._ids(content_id), "type": kind, "role": role}
        if kind == "TEXT":
            body["textOutputConfiguration"] = {"mediaType": "text/plain"}
            if stage is not None:
                body["additionalModelFields"] = json.dumps({"generationStage": stage})
        elif kind == "AUDIO":
            body["audioOutputConfiguration"] = {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": self.output_rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "encoding": "base64",
                "audioType": "SPEECH",
            }
        else:
            body["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        await self._send_event("contentStart", body)
        return content_id

    async def _content_end(self, content_id: str, kind: str, reason: str) -> None:
        await self._send_event(
            "contentEnd", {**self._ids(content_id), "type": kind, "stopReason": reason}
        )

    async def _close_audio(self, reason: str = "PARTIAL_TURN") -> None:
        if self.audio_content is not None:
            content_id, self.audio_content = self.audio_content, None
            await self._content_end(content_id, "AUDIO", reason)

    async def _text(self, role: str, stage: str | None, text: str, reason: str) -> None:
        content_id = await self._content("TEXT", role, stage)
        await self._send_event(
            "textOutput", {**self._ids(content_id), "role": role, "content": text}
        )
        await self._content_end(content_id, "TEXT", reason)

    async def _pump(self) -> None:
        try:
            async for action in self.assistant.actions():
                if self.ended:
                    break
                await self._render(action)
        except Exception:  # pragma: no cover - a fake bug must not hang the client
            logger.exception("fake nova pump failed")
            self.close_output()

    async def _render(self, action: sa.Action) -> None:
        match action:
            case sa.ResponseStart():
                self.completion_id = str(uuid.uuid4())
                self.spoken = []
                await self._send_event("completionStart", self._ids())
            case sa.TranscriptDelta():
                await self._close_audio()
                self.spoken.append(action.text)
                await self._text("ASSISTANT", "SPECULATIVE", action.text, "PARTIAL_TURN")
            case sa.AudioChunk():
                if self.audio_content is None:
                    self.audio_content = await self._content("AUDIO", "ASSISTANT")
                await self._send_event(
                    "audioOutput",
                    {
                        **self._ids(self.audio_content),
                        "content": base64.b64encode(action.pcm).decode("ascii"),
                    },
                )
            case sa.TranscriptFinal():
                await self._close_audio()
                self.final_content = await self._content("TEXT", "ASSISTANT", "FINAL")
                await self._send_event(
                    "textOutput",
                    {**self._ids(self.final_content), "role": "ASSISTANT", "content": action.text},
                )
            case sa.ToolCall():
                content_id = await self._content("TOOL", "TOOL")
                await self._send_event(
                    "toolUse",
                    {
                        **self._ids(content_id),
                        "toolName": action.name,
                        "toolUseId": action.tool_use_id,
                        "content": json.dumps(action.input),
                    },
                )
                await self._content_end(content_id, "TOOL", "TOOL_USE")
            case sa.Usage():
                await self._usage(action)
            case sa.Interrupted():
                await self._close_audio("INTERRUPTED")
                open_final = self.final_content
                if open_final is not None:
                    content_id = open_final
                else:
                    content_id = await self._content("TEXT", "ASSISTANT", "FINAL")
                    spoken = "".join(self.spoken).strip()
                    if spoken:
                        await self._send_event(
                            "textOutput",
                            {**self._ids(content_id), "role": "ASSISTANT", "content": spoken},
                        )
                self.final_content = None
                await self._send_event(
                    "textOutput",
                    {**self._ids(content_id), "role": "ASSISTANT", "content": INTERRUPTED_MARKER},
                )
                await self._content_end(content_id, "TEXT", "INTERRUPTED")
            case sa.ResponseComplete():
                reason = {"complete": "END_TURN", "interrupted": "INTERRUPTED"}.get(
                    action.stop_reason,
                    "TOOL_USE" if action.stop_reason == "tool_use" else "END_TURN",
                )
                if self.final_content is not None:
                    content_id, self.final_content = self.final_content, None
                    await self._content_end(content_id, "TEXT", reason)
                await self._close_audio(reason)
                await self._send_event("completionEnd", {**self._ids(), "stopReason": reason})
            case sa.UserTranscript():
                await self._text("USER", "FINAL", action.text, "END_TURN")
            case sa.Fault():
                await self._fault(action)
            case _:
                pass  # speech start/stop, tool cancel and resumption handles have no Nova signal

    async def _usage(self, usage: sa.Usage) -> None:
        delta = {
            "input": [usage.input_audio_tokens, usage.input_text_tokens],
            "output": [usage.output_audio_tokens, usage.output_text_tokens],
        }
        for side in ("input", "output"):
            self.totals[side] = [a + b for a, b in zip(self.totals[side], delta[side], strict=True)]

        def shape(values: dict[str, list[int]]) -> dict[str, Any]:
            return {side: {"speechTokens": v[0], "textTokens": v[1]} for side, v in values.items()}

        details: dict[str, Any] = {"total": shape(self.totals)}
        if self.server.usage_delta:
            details["delta"] = shape(delta)
        total_in, total_out = sum(self.totals["input"]), sum(self.totals["output"])
        await self._send_event(
            "usageEvent",
            {
                **self._ids(),
                "details": details,
                "totalInputTokens": total_in,
                "totalOutputTokens": total_out,
                "totalTokens": total_in + total_out,
            },
        )

    async def _fault(self, fault: sa.Fault) -> None:
        if fault.kind == "time_limit":
            await self._send_exception(
                "modelTimeoutException",
                "Model has timed out in processing the request. Try your request again.",
            )
        elif fault.kind == "error":
            await self._send_exception("validationException", fault.message)
        elif fault.kind == "disconnect":
            self.ended = True
            self.assistant.close()
            self.peer.abort()
        elif self.server.malformed == "frame":
            garbage = bytearray(es.encode_message(_CHUNK_HEADERS, b'{"bytes":"e30="}'))
            garbage[-1] ^= 0xFF  # break the message CRC
            await self.peer.send_data(self.stream_id, bytes(garbage))
        else:
            broken = base64.b64encode(b'{"event": {"textOutput": {"content": ').decode("ascii")
            payload = json.dumps({"bytes": broken}).encode("ascii")
            await self.peer.send_data(self.stream_id, es.encode_message(_CHUNK_HEADERS, payload))


class FakeNovaServer:
    """A running fake Bedrock runtime endpoint (see the module docs).

    Attributes:
        model_kwargs: ``client_config`` with the loopback ``endpoint_uri``, the CA
            ``ca_bundle`` and a ``boto_session`` holding static fake credentials.
        assistants: One :class:`ScriptedAssistant` per accepted stream, in order.
        received: Every decoded Nova input event, across streams, in order.
        requests: One :class:`RequestRecord` per stream, in order.
        protocol_errors: Every violation the fake detected (empty when the client is right).
        session_ends: How many ``sessionEnd`` events arrived.
    """

    def __init__(
        self,
        *,
        assistant_config: AssistantConfig | None = None,
        malformed: Literal["event", "frame"] = "event",
        usage_delta: bool = True,
        verify_signatures: bool = True,
        credentials: dict[str, str] | None = None,
        stall_handshake: bool = False,
    ) -> None:
        self.assistant_config = assistant_config or AssistantConfig()
        self.stall_handshake = stall_handshake
        self.malformed = malformed
        self.usage_delta = usage_delta
        self.verify_signatures = verify_signatures
        self.credentials = {FAKE_ACCESS_KEY: FAKE_SECRET_KEY, **(credentials or {})}
        self.assistants: list[ScriptedAssistant] = []
        self.received: list[Any] = []
        self.requests: list[RequestRecord] = []
        self.protocol_errors: list[str] = []
        self.session_ends = 0
        self._window_updates = True
        self.tasks: set[asyncio.Task[Any]] = set()
        self.model_kwargs: dict[str, Any] = {}
        self._peers: set[_H2Peer] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._tls = loopback_tls(alpn=["h2"])
        self.port = 0

    @property
    def ca_path(self) -> str:
        """The throwaway CA certificate (PEM file) the client must trust."""
        return str(self._tls.ca_path)

    @property
    def endpoint_uri(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.port}"

    def boto_session(self, access_key: str = FAKE_ACCESS_KEY, secret_key: str | None = None) -> Any:
        """A ``boto3.Session`` with static credentials the fake accepts (adds them if new)."""
        secret = secret_key or self.credentials.get(access_key) or f"secret-{access_key}"
        self.credentials[access_key] = secret
        return boto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret, region_name=FAKE_REGION
        )

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port)."""
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self._tls.server_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.model_kwargs = {
            "client_config": {
                "endpoint_uri": self.endpoint_uri,
                "ca_bundle": self.ca_path,
                "boto_session": self.boto_session(),
            }
        }

    async def close(self) -> None:
        """Stop listening, drop every connection and finish every task."""
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            for session in peer.sessions.values():
                session.ended = True
                session.assistant.close()
            peer.abort()
        tasks = [*self._handlers, *self.tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    @property
    def window_updates(self) -> bool:
        """Whether received data is acknowledged (HTTP/2 ``WINDOW_UPDATE``); default True.

        False makes the client's send window run dry, as when a busy service stops
        taking input: the client's writes stall while its reads go on. True again
        acknowledges everything owed at once.
        """
        return self._window_updates

    @window_updates.setter
    def window_updates(self, on: bool) -> None:
        self._window_updates = on
        if not on:
            return
        for peer in list(self._peers):
            for stream_id, owed in list(peer.owed.items()):
                gone = (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError)
                with contextlib.suppress(*gone):
                    peer.conn.acknowledge_received_data(owed, stream_id)
            peer.owed.clear()
            peer.write_pending()

    def drop_connections(self) -> None:
        """Drop every client connection abruptly."""
        for peer in list(self._peers):
            peer.abort()

    @property
    def sessions(self) -> list[_Session]:
        """The live sessions (newest last)."""
        return [s for p in self._peers for s in p.sessions.values()]

    async def inject_exception(self, kind: str, message: str) -> None:
        """Send a Bedrock stream exception on the newest live session (which then ends)."""
        live = [s for s in self.sessions if not s.ended]
        if not live:
            msg = "No live Nova session to inject an exception into."
            raise RuntimeError(msg)
        await live[-1].inject_exception(kind, message)

    # ------------------------------------------------------------ serving

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        peer = _H2Peer(self, writer)
        self._peers.add(peer)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
            if protocol != "h2":
                self.protocol_errors.append(f"The client negotiated {protocol!r}, not h2.")
                return
            peer.conn.initiate_connection()
            await peer.flush()
            while not peer.closed:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    events = peer.conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    if peer.conn.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                        self.protocol_errors.append(f"HTTP/2 protocol error: {exc}")
                    # else: frames the client sent before it saw the connection close
                    break
                for event in events:
                    await self._on_h2_event(peer, event)
                peer.write_pending()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for session in peer.sessions.values():
                session.ended = True
                session.assistant.close()
            peer.closed = True
            peer.window.set()
            self._peers.discard(peer)
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def _on_h2_event(self, peer: _H2Peer, event: h2.events.Event) -> None:
        conn = peer.conn
        if isinstance(event, h2.events.RequestReceived):
            headers = {_text(k): _text(v) for k, v in event.headers or []}
            await self._on_request(peer, event.stream_id, headers)
        elif isinstance(event, h2.events.DataReceived):
            owed = peer.owed.pop(event.stream_id, 0) + event.flow_controlled_length
            if self._window_updates:
                conn.acknowledge_received_data(owed, event.stream_id)
            else:
                peer.owed[event.stream_id] = owed
            session = peer.sessions.get(event.stream_id)
            if session is not None and event.data:
                session.feed(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            session = peer.sessions.get(event.stream_id)
            if session is not None:
                session.client_ended()
        elif isinstance(event, h2.events.StreamReset):
            session = peer.sessions.pop(event.stream_id, None)
            if session is not None:
                session.ended = True
                session.assistant.close()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            peer.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            peer.closed = True
            peer.window.set()

    async def _reject(
        self, peer: _H2Peer, stream_id: int, status: int, kind: str, msg: str
    ) -> None:
        self.protocol_errors.append(f"{kind}: {msg}")
        body = json.dumps({"message": msg}).encode("utf-8")
        peer.conn.send_headers(
            stream_id,
            [
                (":status", str(status)),
                ("content-type", "application/json"),
                # The service's header names the error type, then the namespace it is in.
                ("x-amzn-errortype", f"{kind}:{_ERROR_NAMESPACE}"),
                ("x-amzn-requestid", str(uuid.uuid4())),
            ],
        )
        await peer.send_data(stream_id, body)
        await peer.end_stream(stream_id, reset=True)

    async def _on_request(self, peer: _H2Peer, stream_id: int, headers: dict[str, str]) -> None:
        raw_path = headers.get(":path", "")
        path, _, query = raw_path.partition("?")
        match = _PATH_RE.match(unquote(path))
        if headers.get(":method") != "POST" or match is None:
            await self._reject(peer, stream_id, 404, "UnknownOperationException", raw_path)
            return
        record = RequestRecord(
            path=raw_path,
            model_id=match.group("model"),
            headers={k: v for k, v in headers.items() if not k.startswith(":")},
        )
        self.requests.append(record)
        if self.stall_handshake:
            return  # never answer: no response headers, the stream stays pending
        auth = _AUTH_RE.match(headers.get("authorization", ""))
        if auth is None:
            await self._reject(
                peer,
                stream_id,
                403,
                "MissingAuthenticationTokenException",
                _AUTH_MESSAGES["MissingAuthenticationTokenException"],
            )
            return
        record.access_key = auth.group("key")
        record.region = auth.group("region")
        record.service = auth.group("service")
        secret = self.credentials.get(auth.group("key"))
        if secret is None:
            await self._reject(
                peer,
                stream_id,
                403,
                "UnrecognizedClientException",
                _AUTH_MESSAGES["UnrecognizedClientException"],
            )
            return
        if self.verify_signatures:
            expected = self._request_signature(headers, path, query, auth, secret)
            record.signature_valid = hmac.compare_digest(expected, auth.group("sig"))
            if not record.signature_valid:
                await self._reject(
                    peer,
                    stream_id,
                    403,
                    "InvalidSignatureException",
                    _AUTH_MESSAGES["InvalidSignatureException"],
                )
                return
        if headers.get("x-amz-content-sha256") != "STREAMING-AWS4-HMAC-SHA256-EVENTS":
            await self._reject(peer, stream_id, 400, "ValidationException", "not a signed stream")
            return
        session = _Session(peer, stream_id, record, secret)
        session.prior_signature = auth.group("sig")
        peer.sessions[stream_id] = session
        self.assistants.append(session.assistant)
        peer.conn.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", "application/vnd.amazon.eventstream"),
                ("x-amzn-requestid", str(uuid.uuid4())),
            ],
        )
        await peer.flush()

    @staticmethod
    def _request_signature(
        headers: dict[str, str], path: str, query: str, auth: re.Match[str], secret: str
    ) -> str:
        """Recompute the SigV4 request signature from what arrived on the wire."""
        signed = auth.group("signed").split(";")
        values = dict(headers)
        values.setdefault("host", headers.get(":authority", ""))
        canonical_headers = "".join(
            f"{name}:{' '.join(values.get(name, '').split())}\n" for name in signed
        )
        pairs = sorted(
            (quote(k, safe=""), quote(v, safe=""))
            for k, _, v in (p.partition("=") for p in query.split("&") if p)
        )
        canonical = "\n".join(
            (
                "POST",
                quote(path, safe="/"),
                "&".join(f"{k}={v}" for k, v in pairs),
                canonical_headers,
                ";".join(signed),
                headers.get("x-amz-content-sha256", ""),
            )
        )
        stamp = headers.get("x-amz-date", "")
        scope = f"{auth.group('date')}/{auth.group('region')}/{auth.group('service')}/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = _signing_key(secret, auth.group("date"), auth.group("region"), auth.group("service"))
        return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@contextlib.asynccontextmanager
async def serve(
    *, assistant_config: AssistantConfig | None = None, **options: Any
) -> AsyncIterator[FakeNovaServer]:
    """Run a fake Nova Sonic endpoint until the context exits.

    Args:
        assistant_config: Behaviour of the assistant of every stream.
        **options: :class:`FakeNovaServer` options: ``malformed`` (``"event"`` or
            ``"frame"``), ``usage_delta`` (send ``details.delta``), ``verify_signatures``,
            ``credentials`` (extra access key -> secret), ``stall_handshake`` (accept the
            TLS connection and the request, never send the HTTP/2 response headers).
    """
    server = FakeNovaServer(assistant_config=assistant_config, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
