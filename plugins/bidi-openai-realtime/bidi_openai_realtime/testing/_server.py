"""A fake GA OpenAI Realtime server on ``ws://127.0.0.1``, driven by ``ScriptedAssistant``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bidi_core._base import cancel_and_wait
from bidi_core._config import check_keys, deep_merge
from bidi_core.testing import LoopbackTLS, loopback_tls
from bidi_core.testing import _assistant as sa
from bidi_core.types import Message, Messages, ToolResult, ToolSpec

from .._wire import SAMPLE_RATE
from ._mcp import FakeMCP
from ._schema import SchemaError, validate_client_event, validate_server_event

__all__ = ["ConnectionRecord", "OpenAIRealtimeFake", "default_server_session", "serve"]

logger = logging.getLogger("bidi_openai_realtime.testing")

_SERVE_OPTIONS = (
    "api_key",
    "auth_header",
    "mcp_servers",
    "path",
    "required_query",
    "stall_handshake",
    "tls",
    "validate",
)
#: The service's host name: the fake's TLS certificate is issued for it too.
SERVICE_HOST = "api.openai.com"
_EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."


def default_server_session(model: str) -> dict[str, Any]:
    """The session a fresh connection starts with (what ``session.created`` echoes)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_fake",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


@attrs.define
class ConnectionRecord:
    """What one client connection did (for tests).

    Attributes:
        path: The request path without the query.
        query: The query parameters.
        headers: The handshake headers (lower-case names).
        session: The session as last updated.
        items: The conversation items, in order.
        sent: Every server event sent, in order.
        truncations: ``(item_id, content_index, audio_end_ms)`` of each truncate.
        deletions: Item ids deleted.
        refused: ``(client event type, error code)`` of each refused client event.
    """

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    session: dict[str, Any] = attrs.field(factory=dict)
    items: list[dict[str, Any]] = attrs.field(factory=list)
    sent: list[dict[str, Any]] = attrs.field(factory=list)
    truncations: list[tuple[str, int, int]] = attrs.field(factory=list)
    deletions: list[str] = attrs.field(factory=list)
    refused: list[tuple[str, str]] = attrs.field(factory=list)


@attrs.define(eq=False)
class OpenAIRealtimeFake:
    """A running fake (satisfies :class:`bidi_core.testing.FakeServer`).

    Attributes:
        model_kwargs: ``client_config`` pointing a model at this fake.
        assistants: One :class:`~bidi_core.testing.ScriptedAssistant` per connection.
        received: Every client frame, decoded from JSON where possible.
        connections: One :class:`ConnectionRecord` per connection.
        invalid: ``(event, message)`` of client events that broke the GA schema.
        invalid_sent: ``(event, message)`` of server events the fake got wrong
            (a bug in the fake; tests assert it stays empty).
        port: The TCP port on 127.0.0.1.
    """

    assistant_config: sa.AssistantConfig | None
    api_key: str | None
    auth_header: str
    path: str
    required_query: dict[str, str]
    validate: bool
    stall_handshake: bool = False
    tls: LoopbackTLS | None = None
    mcp_servers: dict[str, dict[str, str]] = attrs.field(factory=dict)
    model_kwargs: dict[str, Any] = attrs.field(factory=dict)
    assistants: list[sa.ScriptedAssistant] = attrs.field(factory=list)
    received: list[Any] = attrs.field(factory=list)
    connections: list[ConnectionRecord] = attrs.field(factory=list)
    invalid: list[tuple[Any, str]] = attrs.field(factory=list)
    invalid_sent: list[tuple[Any, str]] = attrs.field(factory=list)
    port: int = 0
    _server: Server | None = None

    @property
    def base_url(self) -> str:
        """The ``client_config['base_url']`` of this fake."""
        base = self.path.removesuffix("/realtime")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{base}"

    @property
    def ca_path(self) -> str | None:
        """The throwaway CA (PEM file) of a ``serve(tls=True)`` fake, e.g. for ``SSL_CERT_FILE``."""
        return str(self.tls.ca_path) if self.tls is not None else None

    def client_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The received client events (optionally only those of type *kind*)."""
        return [
            e
            for e in self.received
            if isinstance(e, dict) and (kind is None or e.get("type") == kind)
        ]

    def server_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every server event sent on every connection (optionally of type *kind*)."""
        return [
            e for c in self.connections for e in c.sent if kind is None or e.get("type") == kind
        ]

    # -------------------------------------------------------------- handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query_string = request.path.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        if path != self.path:
            return _json_response(
                connection, http.HTTPStatus.NOT_FOUND, f"No realtime endpoint at {path!r}."
            )
        if self.api_key is not None:
            if self.auth_header == "api-key":
                given = request.headers.get("api-key")
            else:
                auth = request.headers.get("Authorization", "")
                given = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if given != self.api_key:
                return _json_response(
                    connection,
                    http.HTTPStatus.UNAUTHORIZED,
                    _bad_key_message(given),
                    code="invalid_api_key" if given else None,
                )
        for key, value in self.required_query.items():
            if query.get(key) != value:
                return _json_response(
                    connection,
                    http.HTTPStatus.BAD_REQUEST,
                    f"Missing or wrong query parameter {key!r}.",
                )
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        path, _, query_string = request.path.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        record = ConnectionRecord(
            path=path,
            query=query,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
        )
        self.connections.append(record)
        if self.stall_handshake:
            # The socket is open but the session never starts: no session.created.
            await ws.wait_closed()
            return
        conn = _FakeConnection(self, ws, record)
        await conn.run()


def _bad_key_message(given: str | None) -> str:
    """What the service says about a missing or wrong key (it shows only the key's ends)."""
    if not given:
        return (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    shown = f"{given[:3]}{'*' * (len(given) - 7)}{given[-4:]}" if len(given) > 11 else "***"
    return (
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


def _json_response(
    connection: ServerConnection,
    status: http.HTTPStatus,
    message: str,
    *,
    code: str | None = None,
) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    body = json.dumps({"error": error})
    response = connection.respond(status, body)
    response.headers = Headers([("Content-Type", "application/json")])
    response.headers["Content-Length"] = str(len(response.body))
    return response


def _error(
    message: str,
    *,
    code: str | None,
    kind: str = "invalid_request_error",
    param: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


def _user_text(item: Mapping[str, Any]) -> str | None:
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    texts = [c.get("text") or "" for c in item.get("content", []) if c.get("type") == "input_text"]
    return "\n".join(texts) if texts else None


def _is_assistant_message(item: Mapping[str, Any]) -> bool:
    return item.get("type") == "message" and item.get("role") == "assistant"


def _result_from_output(call_id: str, output: str) -> ToolResult:
    if output.startswith("Error"):
        text = output.removeprefix("Error").removeprefix(":").strip()
        return {"toolUseId": call_id, "status": "error", "content": [{"text": text}]}
    return {"toolUseId": call_id, "status": "success", "content": [{"text": output}]}


def _items_to_messages(items: list[dict[str, Any]]) -> Messages:
    messages: Messages = []
    for item in items:
        kind = item.get("type")
        message: Message | None = None
        if kind == "message":
            role = item.get("role")
            texts = [
                c.get("text") or c.get("transcript") or ""
                for c in item.get("content", [])
                if c.get("type") in ("input_text", "output_text", "output_audio", "input_audio")
            ]
            text = "\n".join(t for t in texts if t)
            if role in ("user", "assistant") and text:
                message = {"role": role, "content": [{"text": text}]}
        elif kind == "function_call":
            try:
                args = json.loads(item.get("arguments") or "{}")
            except ValueError:
                args = {}
            message = {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": str(item.get("call_id")),
                            "name": str(item.get("name")),
                            "input": args,
                        }
                    }
                ],
            }
        elif kind == "function_call_output":
            call_id = str(item.get("call_id"))
            message = {
                "role": "user",
                "content": [{"toolResult": _result_from_output(call_id, str(item.get("output")))}],
            }
        if message is not None:
            messages.append(message)
    return messages


def _tool_specs(tools: list[dict[str, Any]]) -> list[ToolSpec]:
    return [
        {
            "name": str(t.get("name")),
            "description": str(t.get("description") or ""),
            "inputSchema": {"json": t.get("parameters") or {}},
        }
        for t in tools
        if t.get("type", "function") == "function" and t.get("name")
    ]


@attrs.define
class _Resp:
    output: list[dict[str, Any]] = attrs.field(factory=list)
    open_items: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    transcripts: dict[str, str] = attrs.field(factory=dict)
    usage: dict[str, Any] | None = None


class _FakeConnection:
    """One client connection: the GA protocol on one side, the assistant on the other."""

    def __init__(self, fake: OpenAIRealtimeFake, ws: ServerConnection, record: ConnectionRecord):
        self.fake = fake
        self.ws = ws
        self.record = record
        self.assistant = sa.ScriptedAssistant(
            fake.assistant_config, connection=len(fake.assistants)
        )
        fake.assistants.append(self.assistant)
        model = record.query.get("model") or record.query.get("deployment") or "gpt-realtime"
        record.session = default_server_session(model)
        self.ids = itertools.count(1)
        self.started = False
        self.consumed = 0
        self.pump: asyncio.Task[None] | None = None
        self.pending_images: list[tuple[bytes, str]] = []
        self.buffer: list[bytes] = []
        self.committed: list[tuple[str, bytes]] = []
        self.audio_ms = 0.0
        self.alias: dict[str, str] = {}
        self.interrupt_item: str | None = None
        self.manual_item: str | None = None
        self.active: str | None = None
        self.responses: dict[str, _Resp] = {}
        self.audio_bytes: dict[str, int] = {}
        self.trigger_event_id: str | None = None
        self.closing = False
        self.mcp = FakeMCP(fake.mcp_servers)

    # ------------------------------------------------------------ helpers

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self.ids):05d}"

    @property
    def session(self) -> dict[str, Any]:
        return self.record.session

    @property
    def vad(self) -> bool:
        return self.session["audio"]["input"].get("turn_detection") is not None

    @property
    def transcribing(self) -> bool:
        return self.session["audio"]["input"].get("transcription") is not None

    @property
    def audio_out(self) -> bool:
        return "audio" in (self.session.get("output_modalities") or ["audio"])

    async def emit(self, event: dict[str, Any]) -> None:
        event = {"event_id": self._id("event"), **event}
        if self.fake.validate:
            try:
                validate_server_event(event)
            except SchemaError as exc:
                self.fake.invalid_sent.append((event, str(exc)))
                logger.error("fake emitted an invalid GA event: %s", exc)
                raise
        text = json.dumps(event)
        self.record.sent.append(json.loads(text))  # a snapshot: items keep changing
        await self.ws.send(text)

    async def refuse(self, event: Mapping[str, Any], message: str, **kwargs: Any) -> None:
        self.record.refused.append((str(event.get("type")), str(kwargs.get("code"))))
        await self.emit(_error(message, event_id=event.get("event_id"), **kwargs))

    def _previous_item_id(self) -> str | None:
        return self.record.items[-1]["id"] if self.record.items else None

    async def _add_item(self, item: dict[str, Any]) -> None:
        previous = self._previous_item_id()
        self.record.items.append(item)
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        try:
            await self.emit({"type": "session.created", "session": self.session})
            async for raw in self.ws:
                await self.on_client(raw)
        except ConnectionClosed:
            pass
        finally:
            self.closing = True
            self.assistant.close()
            if self.pump is not None and self.pump is not asyncio.current_task():
                await cancel_and_wait(self.pump)

    def ensure_started(self, history: list[dict[str, Any]] | None = None) -> None:
        if self.started:
            return
        self.started = True
        items = self.record.items if history is None else history
        self.assistant.start(
            system_prompt=self.session.get("instructions") or None,
            tools=_tool_specs(self.session.get("tools") or []) + self.mcp.specs(),
            messages=_items_to_messages(items),
        )
        for image, mime in self.pending_images:
            self.assistant.user_image(image, mime)
        self.pending_images = []
        self.pump = asyncio.create_task(self._pump(), name="openai-fake-pump")

    async def _pump(self) -> None:
        try:
            async for action in self.assistant.actions():
                await self.on_action(action)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("fake pump failed")
            self.fake.invalid_sent.append((None, f"pump failed: {exc!r}"))
            with contextlib.suppress(Exception):
                await self.ws.close(1011, "fake server error")

    # ------------------------------------------------------------ client side

    async def on_client(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            self.fake.received.append(raw)
            self.fake.invalid.append((raw, "not JSON"))
            await self.emit(
                _error("The server could not parse the event as JSON.", code="invalid_json")
            )
            return
        self.fake.received.append(event)
        if not isinstance(event, dict):
            self.fake.invalid.append((event, "not an object"))
            await self.emit(_error("Events must be JSON objects.", code="invalid_value"))
            return
        if self.fake.validate:
            try:
                validate_client_event(event)
            except SchemaError as exc:
                self.fake.invalid.append((event, str(exc)))
                await self.refuse(event, str(exc), code=exc.code, param=exc.param)
                return
        handler = getattr(self, "on_" + str(event["type"]).replace(".", "_"), None)
        if handler is None:
            await self.refuse(
                event,
                f"{event['type']!r} is not supported on this transport.",
                code="invalid_value",
                param="type",
            )
            return
        await handler(event)

    async def on_session_update(self, event: dict[str, Any]) -> None:
        update = dict(event["session"])
        self.record.session = deep_merge(self.session, update)
        await self.emit({"type": "session.updated", "session": self.session})
        if "tools" in update:
            await self.mcp.list_tools(update["tools"] or [], self.emit, self._id)
        if self.started and "tools" in update:
            # Like the service: the new tools apply from the next response on.
            self.assistant.set_tools(_tool_specs(update["tools"] or []) + self.mcp.specs())

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        pcm = base64.b64decode(event["audio"])
        self.audio_ms += len(pcm) / 2 / SAMPLE_RATE * 1000.0
        if self.vad:
            self.ensure_started()
            self.consumed = len(self.record.items)
            self.assistant.user_audio(pcm, SAMPLE_RATE)
        else:
            self.buffer.append(pcm)

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if self.vad:
            self.ensure_started()
            self.assistant.end_of_audio()
            return
        audio = b"".join(self.buffer)
        if len(audio) < SAMPLE_RATE * 2 // 10:  # 100 ms, as the service requires
            await self.refuse(
                event,
                "Error committing input audio buffer: buffer too small. Expected at least "
                "100ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
            return
        self.buffer = []
        item_id = self._id("item")
        previous = self._previous_item_id()
        self.committed.append((item_id, audio))
        await self.emit(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        await self._add_item(
            {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            }
        )

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer = []
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = dict(event["item"])
        item.setdefault("id", self._id("item"))
        item["object"] = "realtime.item"
        item["status"] = "completed"
        await self._add_item(item)
        if item.get("type") == "message":
            for part in item.get("content", []):
                if part.get("type") == "input_image":
                    header, _, data = str(part.get("image_url", "")).partition(",")
                    mime = header.removeprefix("data:").split(";")[0]
                    image = base64.b64decode(data)
                    if self.started:
                        self.assistant.user_image(image, mime)
                    else:
                        self.pending_images.append((image, mime))

    def _find_item(self, item_id: str) -> dict[str, Any] | None:
        return next((i for i in self.record.items if i.get("id") == item_id), None)

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        item = self._find_item(item_id)
        if item is None or item.get("role") != "assistant":
            await self.refuse(
                event,
                f"Item {item_id!r} is not an assistant message.",
                code="invalid_value",
                param="item_id",
            )
            return
        content = item.get("content") or []
        index = event["content_index"]
        if not 0 <= index < len(content) or content[index].get("type") != "output_audio":
            await self.refuse(
                event,
                "Content index is not an audio part.",
                code="invalid_value",
                param="content_index",
            )
            return
        have_ms = self.audio_bytes.get(item_id, 0) * 1000 // (2 * SAMPLE_RATE)
        if event["audio_end_ms"] > have_ms:
            await self.refuse(
                event,
                f"Audio content of {have_ms}ms is already shorter than {event['audio_end_ms']}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
            return
        self.record.truncations.append((item_id, index, event["audio_end_ms"]))
        await self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": index,
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    async def on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            await self.refuse(
                event,
                f"Item with item_id not found: {event['item_id']}",
                code="invalid_value",
                param="item_id",
            )
            return
        self.record.items.remove(item)
        self.record.deletions.append(event["item_id"])
        await self.emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            await self.refuse(
                event,
                f"Item with item_id not found: {event['item_id']}",
                code="invalid_value",
                param="item_id",
            )
            return
        await self.emit({"type": "conversation.item.retrieved", "item": item})

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        await self.refuse(
            event,
            "Cancellation failed: no active response found"
            if self.active is None
            else "The fake server does not emulate response.cancel.",
            code="response_cancel_not_active",
        )

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.active is not None or self.assistant.response_active:
            active = self.active or "a response"
            await self.refuse(
                event,
                f"Conversation already has an active response in progress: {active}. Wait "
                "until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
            return
        items = self.record.items
        new = items[self.consumed :]
        self.consumed = len(items)
        # Like the service, one response answers every user text added since the last
        # response.create (a client adds several while a response is active).
        asked = [item for item in new if _user_text(item) is not None]
        trigger = asked[-1] if asked else None
        outputs = [i for i in new if i.get("type") == "function_call_output"]
        self.trigger_event_id = event.get("event_id")
        fresh = not self.started
        if fresh:
            # A fresh connection gets the history replayed (user and assistant messages
            # in turn) and then the turns still to answer: the user texts after the
            # last assistant message. The rest is the history the assistant starts with.
            if trigger is not None:
                answered = [n for n, i in enumerate(items) if _is_assistant_message(i)]
                tail = items[answered[-1] + 1 :] if answered else items
                asked = [i for i in tail if _user_text(i) is not None] or [trigger]
            self.ensure_started([i for i in items if not any(i is a for a in asked)])
            outputs = []  # the new assistant knows no calls: they are history
        acted = False
        for output in outputs:
            call_id = str(output["call_id"])
            self.assistant.tool_result(call_id, _result_from_output(call_id, str(output["output"])))
            acted = True
        committed, self.committed = self.committed, []
        for item_id, audio in committed:
            self.manual_item = item_id
            self.assistant.user_audio(audio, SAMPLE_RATE)
            self.assistant.end_of_audio()
            acted = True
        if trigger is not None:
            texts = [_user_text(i) or "" for i in asked]
            if fresh:
                # The texts before the trigger are replayed history: their directives
                # fired on an older connection (a time limit there must not end every
                # new connection); only the text that arrived now may carry one.
                texts = [sa.without_faults(t) for t in texts[:-1]] + texts[-1:]
            self.assistant.user_text(" ".join(t for t in texts if t))
            acted = True
        if not acted:
            await self._empty_response()

    async def _empty_response(self) -> None:
        response_id = self._id("resp")
        await self.emit(
            {
                "type": "response.created",
                "response": self._response(response_id, "in_progress", [], None),
            }
        )
        await self.emit(
            {
                "type": "response.done",
                "response": self._response(response_id, "completed", [], _usage(0, 0, 0, 0)),
            }
        )

    # ------------------------------------------------------------ server side

    def _response(
        self,
        response_id: str,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": "conv_fake",
            "output_modalities": self.session.get("output_modalities") or ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                    "voice": self.session["audio"]["output"].get("voice", "marin"),
                }
            },
            "usage": usage,
            "metadata": None,
        }

    async def _message_item(self, response_id: str, item_id: str) -> dict[str, Any]:
        resp = self.responses.setdefault(response_id, _Resp())
        item = resp.open_items.get(item_id)
        if item is not None:
            return item
        part_type = "audio" if self.audio_out else "text"
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        resp.open_items[item_id] = item
        resp.transcripts[item_id] = ""
        index = len(resp.output)
        resp.output.append(item)
        previous = self._previous_item_id()
        self.record.items.append(item)
        await self.emit(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": index,
                "item": item,
            }
        )
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        part = (
            {"type": part_type, "transcript": ""}
            if part_type == "audio"
            else {"type": "text", "text": ""}
        )
        # From here on the item holds its (growing) content part, as on the service.
        item["content"] = [
            {"type": "output_audio", "transcript": ""}
            if part_type == "audio"
            else {"type": "output_text", "text": ""}
        ]
        await self.emit(
            {
                "type": "response.content_part.added",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "part": part,
            }
        )
        return item

    async def _finish_item(self, response_id: str, item_id: str, text: str, status: str) -> None:
        resp = self.responses.setdefault(response_id, _Resp())
        item = resp.open_items.pop(item_id, None)
        if item is None:
            return
        index = resp.output.index(item)
        where = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": index,
            "content_index": 0,
        }
        if self.audio_out:
            await self.emit({"type": "response.output_audio.done", **where})
            await self.emit(
                {"type": "response.output_audio_transcript.done", **where, "transcript": text}
            )
            part = {"type": "audio", "transcript": text}
            item["content"] = [{"type": "output_audio", "transcript": text}]
        else:
            await self.emit({"type": "response.output_text.done", **where, "text": text})
            part = {"type": "text", "text": text}
            item["content"] = [{"type": "output_text", "text": text}]
        item["status"] = status
        await self.emit({"type": "response.content_part.done", **where, "part": part})
        await self.emit(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": index,
                "item": item,
            }
        )
        await self.emit({"type": "conversation.item.done", "previous_item_id": None, "item": item})

    async def on_action(self, action: sa.Action) -> None:
        match action:
            case sa.ResponseStart():
                self.active = action.response_id
                self.responses[action.response_id] = _Resp()
                await self.emit(
                    {
                        "type": "response.created",
                        "response": self._response(action.response_id, "in_progress", [], None),
                    }
                )
            case sa.TranscriptDelta():
                await self._message_item(action.response_id, action.item_id)
                resp = self.responses[action.response_id]
                resp.transcripts[action.item_id] = (
                    resp.transcripts.get(action.item_id, "") + action.text
                )
                index = resp.output.index(resp.open_items[action.item_id])
                kind = (
                    "response.output_audio_transcript.delta"
                    if self.audio_out
                    else "response.output_text.delta"
                )
                await self.emit(
                    {
                        "type": kind,
                        "response_id": action.response_id,
                        "item_id": action.item_id,
                        "output_index": index,
                        "content_index": 0,
                        "delta": action.text,
                    }
                )
            case sa.AudioChunk():
                if not self.audio_out:
                    return
                await self._message_item(action.response_id, action.item_id)
                resp = self.responses[action.response_id]
                index = resp.output.index(resp.open_items[action.item_id])
                self.audio_bytes[action.item_id] = self.audio_bytes.get(action.item_id, 0) + len(
                    action.pcm
                )
                await self.emit(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": action.response_id,
                        "item_id": action.item_id,
                        "output_index": index,
                        "content_index": 0,
                        "delta": base64.b64encode(action.pcm).decode("ascii"),
                    }
                )
            case sa.TranscriptFinal():
                await self._message_item(action.response_id, action.item_id)
                await self._finish_item(
                    action.response_id, action.item_id, action.text, "completed"
                )
            case sa.ToolCall():
                await self._tool_call(action)
            case sa.Usage():
                self.responses.setdefault(action.response_id, _Resp()).usage = _usage(
                    action.input_text_tokens,
                    action.input_audio_tokens,
                    action.output_text_tokens,
                    action.output_audio_tokens,
                    action.cached_tokens,
                )
            case sa.ResponseComplete():
                await self._response_done(action)
            case sa.Interrupted():
                if self.vad:
                    self.interrupt_item = self._id("item")
                    await self.emit(
                        {
                            "type": "input_audio_buffer.speech_started",
                            "audio_start_ms": int(self.audio_ms),
                            "item_id": self.interrupt_item,
                        }
                    )
            case sa.UserSpeechStarted():
                await self._speech_started(action)
            case sa.UserSpeechStopped():
                await self._speech_stopped(action)
            case sa.UserTranscript():
                await self._user_transcript(action)
            case sa.Fault():
                await self._fault(action)
            case _:
                pass  # ToolCancel and SessionHandle have no GA wire signal

    async def _tool_call(self, action: sa.ToolCall) -> None:
        resp = self.responses.setdefault(action.response_id, _Resp())
        if action.name in self.mcp.tools:  # the "server" runs it: no function call
            mcp_item, result = await self.mcp.call(
                response_id=action.response_id,
                output_index=len(resp.output),
                name=action.name,
                arguments=action.input,
                emit=self.emit,
                new_id=self._id,
            )
            resp.output.append(mcp_item)
            self.record.items.append(mcp_item)
            self.assistant.tool_result(
                action.tool_use_id, {**result, "toolUseId": action.tool_use_id}
            )
            return
        item_id = self._id("item")
        arguments = json.dumps(action.input)
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": action.name,
            "call_id": action.tool_use_id,
            "arguments": "",
        }
        index = len(resp.output)
        resp.output.append(item)
        previous = self._previous_item_id()
        self.record.items.append(item)
        where = {"response_id": action.response_id, "output_index": index}
        await self.emit({"type": "response.output_item.added", **where, "item": item})
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        call = {**where, "item_id": item_id, "call_id": action.tool_use_id}
        await self.emit(
            {"type": "response.function_call_arguments.delta", **call, "delta": arguments}
        )
        await self.emit(
            {
                "type": "response.function_call_arguments.done",
                **call,
                "name": action.name,
                "arguments": arguments,
            }
        )
        item["arguments"] = arguments
        item["status"] = "completed"
        await self.emit({"type": "response.output_item.done", **where, "item": item})
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )

    async def _response_done(self, action: sa.ResponseComplete) -> None:
        resp = self.responses.pop(action.response_id, _Resp())
        interrupted = action.stop_reason == "interrupted"
        for item_id in list(resp.open_items):
            await self._finish_item(
                action.response_id,
                item_id,
                resp.transcripts.get(item_id, ""),
                "incomplete" if interrupted else "completed",
            )
        if interrupted:
            status, details = "cancelled", {"type": "cancelled", "reason": "turn_detected"}
        else:
            status, details = "completed", None
        usage = resp.usage or _usage(0, 0, 0, 0)
        await self.emit(
            {
                "type": "response.done",
                "response": self._response(action.response_id, status, resp.output, usage, details),
            }
        )
        if self.active == action.response_id:
            self.active = None

    async def _speech_started(self, action: sa.UserSpeechStarted) -> None:
        if not self.vad:
            if self.manual_item is not None:
                self.alias[action.item_id] = self.manual_item
            return
        if self.interrupt_item is not None:
            self.alias[action.item_id] = self.interrupt_item
            self.interrupt_item = None
            return
        await self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": action.audio_start_ms,
                "item_id": action.item_id,
            }
        )

    async def _speech_stopped(self, action: sa.UserSpeechStopped) -> None:
        if not self.vad:
            return
        item_id = self.alias.get(action.item_id, action.item_id)
        previous = self._previous_item_id()
        await self.emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": action.audio_end_ms,
                "item_id": item_id,
            }
        )
        await self.emit(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        await self._add_item(
            {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            }
        )

    async def _user_transcript(self, action: sa.UserTranscript) -> None:
        item_id = self.alias.pop(action.item_id, action.item_id)
        item = self._find_item(item_id)
        if item is not None:
            item["content"] = [{"type": "input_audio", "transcript": action.text}]
        if not self.transcribing:
            return
        where = {"item_id": item_id, "content_index": 0}
        words = len(action.text.split())
        await self.emit(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                **where,
                "delta": action.text,
            }
        )
        await self.emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                **where,
                "transcript": action.text,
                "usage": {
                    "type": "tokens",
                    "input_tokens": 10 * words,
                    "output_tokens": words,
                    "total_tokens": 11 * words,
                    "input_token_details": {"text_tokens": 0, "audio_tokens": 10 * words},
                },
            }
        )

    async def _fault(self, action: sa.Fault) -> None:
        if action.kind == "error":
            await self.emit(
                _error(action.message, code=action.code, event_id=self.trigger_event_id)
            )
        elif action.kind == "malformed":
            await self.ws.send("{this is not json")
            if self.active is None:
                # The garbage frame stood in for the answer; the request is still answered.
                await self._empty_response()
        elif action.kind == "disconnect":
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
        else:  # time_limit: what the service does at 60 minutes
            await self.emit(_error(_EXPIRED_MESSAGE, code="session_expired"))
            await self.ws.close(1001, _EXPIRED_MESSAGE)


def _usage(
    text_in: int, audio_in: int, text_out: int, audio_out: int, cached: int = 0
) -> dict[str, Any]:
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


@contextlib.asynccontextmanager
async def serve(
    *, assistant_config: sa.AssistantConfig | None = None, **options: Any
) -> AsyncIterator[OpenAIRealtimeFake]:
    """Run a fake GA Realtime server on ``ws://127.0.0.1`` until the context exits.

    Every connection gets a fresh :class:`~bidi_core.testing.ScriptedAssistant`
    built with *assistant_config*. Options:

    * ``api_key`` (``"fake-key"``): the key clients must send (None: any). A wrong or
      missing key gets HTTP 401 with the service's error body (``invalid_api_key``).
    * ``auth_header`` (``"authorization"``): ``"api-key"`` expects Azure's header.
    * ``path`` (``"/v1/realtime"``): the socket path (e.g. ``"/openai/realtime"``).
    * ``required_query`` (``{}``): query parameters the handshake must carry.
    * ``validate`` (True): check every client and server event against the GA schema.
    * ``stall_handshake`` (False): accept the WebSocket but never send ``session.created``,
      like a service that hangs before the session starts.
    * ``mcp_servers`` (``{}``): server-side MCP servers ``{label: {tool: output}}`` that
      ``{"type": "mcp"}`` session tools reach (see :mod:`._mcp`).
    * ``tls`` (False): serve ``wss://`` as the service does, with a certificate from a
      throwaway CA issued for 127.0.0.1 and ``api.openai.com`` (``fake.ca_path``), so a
      client with the default URL reaches it through
      :func:`bidi_core.testing.resolve_to_loopback`.

    Yields:
        The running :class:`OpenAIRealtimeFake`; ``fake.model_kwargs`` connects a model.
    """
    check_keys(options, _SERVE_OPTIONS, where="bidi_openai_realtime.testing.serve()")
    fake = OpenAIRealtimeFake(
        assistant_config=assistant_config,
        api_key=options.get("api_key", "fake-key"),
        auth_header=options.get("auth_header", "authorization"),
        path=options.get("path", "/v1/realtime"),
        required_query=dict(options.get("required_query") or {}),
        validate=options.get("validate", True),
        stall_handshake=bool(options.get("stall_handshake", False)),
        mcp_servers=dict(options.get("mcp_servers") or {}),
        tls=loopback_tls(hostnames=(SERVICE_HOST,)) if options.get("tls") else None,
    )
    async with ws_serve(
        fake._handler,
        "127.0.0.1",
        0,
        process_request=fake._process_request,
        max_size=None,
        compression=None,
        ssl=fake.tls.server_context if fake.tls is not None else None,
    ) as server:
        fake._server = server
        fake.port = int(next(iter(server.sockets)).getsockname()[1])
        client_config: dict[str, Any] = {
            "api_key": fake.api_key or "fake-key",
            "base_url": fake.base_url,
        }
        if fake.tls is not None:
            client_config["ssl"] = fake.tls.client_context
        if fake.auth_header != "authorization":
            client_config["auth_header"] = fake.auth_header
        if fake.required_query:
            client_config["query"] = dict(fake.required_query)
        fake.model_kwargs = {"client_config": client_config}
        yield fake
