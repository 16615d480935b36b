"""A wire-faithful fake of the example service on 127.0.0.1, for tests and ``bidi chat --fake``.

Every connection gets a fresh :class:`bidi_core.testing.ScriptedAssistant` (the brain
shared by all fakes and the simulated model), so the core's conformance suite runs
against the real client stack::

    from bidi_example.testing import serve

    async with serve() as fake:
        model = get_model("example", **fake.model_kwargs)

The fake encodes and decodes frames itself instead of reusing ``bidi_example._wire``,
so a mistake in the client's wire code cannot hide itself. Each
:class:`~bidi_core.testing.Fault` becomes the service's real signal: ``error`` an error
frame, ``malformed`` a line that is not JSON, ``disconnect`` an abrupt TCP reset,
``time_limit`` a ``session.expired`` frame and a close.

``serve(stall_handshake=True)`` accepts connections but never answers
``session.start`` (for the fault matrix's never-answering server).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs

from bidi_core import ToolResult
from bidi_core.testing import (
    Action,
    AssistantConfig,
    AudioChunk,
    Fault,
    Interrupted,
    ResponseComplete,
    ResponseStart,
    ScriptedAssistant,
    SessionHandle,
    ToolCall,
    ToolCancel,
    TranscriptDelta,
    TranscriptFinal,
    Usage,
    UserTranscript,
    loopback_tls,
)

__all__ = ["ExampleFake", "serve"]

_OUTPUT_RATE = 24000  # what the service speaks


class ExampleFake:
    """A running fake (satisfies :class:`bidi_core.testing.FakeServer`).

    Attributes:
        model_kwargs: ``client_config`` reaching this fake (loopback, fake key, CA).
        assistants: One ScriptedAssistant per accepted session, in order.
        received: Every decoded client frame, in arrival order, across connections.
        snapshots: Resumption handle -> the assistant memory it restores.
    """

    def __init__(
        self,
        *,
        assistant_config: AssistantConfig,
        tls: bool,
        api_key: str,
        stall_handshake: bool = False,
    ) -> None:
        self.assistant_config = attrs.evolve(assistant_config, output_sample_rate=_OUTPUT_RATE)
        self.api_key = api_key
        self.stall_handshake = stall_handshake
        self.tls = loopback_tls() if tls else None
        self.model_kwargs: dict[str, Any] = {}
        self.assistants: list[ScriptedAssistant] = []
        self.received: list[Any] = []
        self.snapshots: dict[str, dict[str, Any]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        server_ssl = self.tls.server_context if self.tls else None
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, ssl=server_ssl)
        port = self._server.sockets[0].getsockname()[1]
        self.model_kwargs = {
            "client_config": {
                "host": "127.0.0.1",
                "port": port,
                "api_key": self.api_key,
                "ssl": self.tls.client_context if self.tls else False,
            }
        }

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # End every session by dropping its connection (cancelling the handler tasks
        # would make asyncio's stream callback log the cancellation as an error).
        for tx in list(self._writers):
            tx.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------ sessions

    async def _session(self, rx: asyncio.StreamReader, tx: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(tx)
        try:
            await self._converse(rx, tx)
        except (ConnectionError, asyncio.IncompleteReadError, json.JSONDecodeError):
            pass  # the client went away (or the fake is closing)
        finally:
            self._tasks.discard(task)
            self._writers.discard(tx)
            tx.close()
            with contextlib.suppress(Exception):
                await tx.wait_closed()

    async def _converse(self, rx: asyncio.StreamReader, tx: asyncio.StreamWriter) -> None:
        start = json.loads(await rx.readline())
        self.received.append(start)
        if self.stall_handshake:
            while await rx.read(65536):  # never answer; read until the client goes away
                pass
            return
        refusal = self._check_start(start)
        if refusal is not None:
            await _write(tx, {"type": "error", "fatal": True, **refusal})
            return
        handle = start["resume_handle"]
        assistant = ScriptedAssistant(self.assistant_config, connection=len(self.assistants))
        assistant.start(
            system_prompt=start["instructions"],
            tools=start["tools"],
            messages=[] if handle else start["history"],
            resume=self.snapshots.get(handle) if handle else None,
        )
        self.assistants.append(assistant)
        await _write(tx, {"type": "session.ready", "session_id": f"sess_{len(self.assistants)}"})
        pump = asyncio.create_task(self._pump(assistant, tx))
        try:
            while line := await rx.readline():
                frame = json.loads(line)
                self.received.append(frame)
                if frame["type"] == "session.end":
                    break
                self._take(assistant, frame)
        finally:
            assistant.close()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    def _check_start(self, start: dict[str, Any]) -> dict[str, str] | None:
        if start.get("type") != "session.start":
            return {"code": "protocol_error", "message": "The first frame must be session.start."}
        if start.get("api_key") != self.api_key:
            return {"code": "unauthorized", "message": "Invalid API key."}
        handle = start.get("resume_handle")
        if handle and handle not in self.snapshots:
            return {"code": "invalid_handle", "message": f"Unknown resume handle {handle!r}."}
        return None

    @staticmethod
    def _take(assistant: ScriptedAssistant, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "input.text":
            assistant.user_text(frame["text"])
        elif kind == "input.audio":
            assistant.user_audio(base64.b64decode(frame["audio"]), frame["sample_rate"])
        elif kind == "tool.result":
            result: ToolResult = {
                "toolUseId": frame["tool_use_id"],
                "status": frame["status"],
                "content": frame["content"],
            }
            assistant.tool_result(result["toolUseId"], result)

    async def _pump(self, assistant: ScriptedAssistant, tx: asyncio.StreamWriter) -> None:
        async for action in assistant.actions():
            if isinstance(action, Fault):
                if action.kind == "malformed":
                    tx.write(b"{this is not json\n")
                elif action.kind == "disconnect":
                    tx.transport.abort()
                    return
                elif action.kind == "time_limit":
                    await _write(tx, {"type": "session.expired", "message": action.message})
                    tx.close()
                    return
                else:
                    await _write(
                        tx,
                        {
                            "type": "error",
                            "code": action.code,
                            "message": action.message,
                            "fatal": False,
                        },
                    )
                continue
            if isinstance(action, SessionHandle):
                self.snapshots[action.handle] = assistant.snapshot()
            frame = _frame(action)
            if frame is not None:
                await _write(tx, frame)


def _frame(action: Action) -> dict[str, Any] | None:
    """Translate one assistant action into the service's frame (None: nothing to send)."""
    match action:
        case ResponseStart():
            return {"type": "response.start", "response_id": action.response_id}
        case ResponseComplete():
            return {
                "type": "response.done",
                "response_id": action.response_id,
                "stop_reason": action.stop_reason,
            }
        case TranscriptDelta() | TranscriptFinal():
            final = isinstance(action, TranscriptFinal)
            return {
                "type": "transcript",
                "role": "assistant",
                "item_id": action.item_id,
                "text": action.text,
                "final": final,
            }
        case UserTranscript():
            return {
                "type": "transcript",
                "role": "user",
                "item_id": action.item_id,
                "text": action.text,
                "final": True,
            }
        case AudioChunk():
            return {
                "type": "audio",
                "response_id": action.response_id,
                "audio": base64.b64encode(action.pcm).decode("ascii"),
            }
        case ToolCall():
            return {
                "type": "tool.call",
                "tool_use_id": action.tool_use_id,
                "name": action.name,
                "input": action.input,
            }
        case ToolCancel():
            return {"type": "tool.cancel", "tool_use_ids": list(action.tool_use_ids)}
        case Usage():
            return {
                "type": "usage",
                "input_tokens": action.input_tokens,
                "output_tokens": action.output_tokens,
                "input_details": {
                    "text": action.input_text_tokens,
                    "audio": action.input_audio_tokens,
                },
                "output_details": {
                    "text": action.output_text_tokens,
                    "audio": action.output_audio_tokens,
                },
            }
        case Interrupted():
            return {"type": "interrupted", "response_id": action.response_id}
        case SessionHandle():
            return {"type": "session.handle", "handle": action.handle}
        case _:
            return None  # speech start/stop markers: the example service does not send them


async def _write(tx: asyncio.StreamWriter, frame: dict[str, Any]) -> None:
    tx.write(json.dumps(frame).encode() + b"\n")
    await tx.drain()


@contextlib.asynccontextmanager
async def serve(
    *,
    assistant_config: AssistantConfig | None = None,
    tls: bool = False,
    api_key: str = "fake-example-key",
    stall_handshake: bool = False,
) -> AsyncIterator[ExampleFake]:
    """Run the fake until the context exits.

    Args:
        assistant_config: Behaviour of each connection's ScriptedAssistant (its
            ``output_sample_rate`` is set to the service's 24 kHz).
        tls: Serve TLS with a throwaway CA (``model_kwargs`` then carries a client
            ``SSLContext`` trusting it); needs ``bidi-core[testing]``.
        api_key: The key the fake accepts (``model_kwargs`` carries it).
        stall_handshake: Accept connections but never answer ``session.start``, like a
            server that hangs in the handshake.
    """
    fake = ExampleFake(
        assistant_config=assistant_config or AssistantConfig(),
        tls=tls,
        api_key=api_key,
        stall_handshake=stall_handshake,
    )
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
