"""Frame-replaying benchmark servers, one per provider, speaking that provider's wire.

Run as a separate process (``python benchmarks/_server.py openai|gemini|nova``); it
prints one JSON line (``{"port": ..., "ca_path": ...}``) and serves until stdin closes.

Each server does the provider's handshake like its fake (OpenAI: ``session.created`` /
``session.updated`` over ``ws://``; Gemini: ``setup`` / ``setupComplete`` over ``wss://``;
Nova: an HTTP/2 ``POST`` over TLS answered with an event stream), then reacts to text
inputs from the client, in whatever form that client sends them:

* ``bench-go:receive:<n>`` -> send the frames of *n* answers plus the sentinel answer,
  recorded from the plugin's fake (:mod:`_record`), as fast as the socket takes them;
* ``bench-go:flush`` -> send the transcript ``bench-ack:<audio chunks received>`` and
  reset the count (the send benchmark's end marker; proves nothing was dropped);
* ``bench-go:rt:<seconds>`` -> send one stamped 20 ms audio frame every 20 ms for that
  long, then the transcript ``bench-done:<frames sent>:<p99 server lag ms>``.

Audio chunks from the client are only counted. Nothing is validated: the plugins'
fakes do that in the tests; here the server must stay cheap. The handshake frames, the
stamped audio and the acknowledgement texts are recorded frames too (with the audio
payload or the text replaced), so every byte a client reads is shaped by the fake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _frames as fr
from _record import RECORDERS, Recording, ignore_crt_body_writer

#: Distinct answers recorded from the fake (a burst of more cycles through them).
ANSWERS = 20
_GO = re.compile(r"bench-go:([a-z]+)(?::([0-9.]+))?")


class Conn:
    """Per-connection counters and the real-time task."""

    def __init__(self) -> None:
        self.audio_in = 0
        self.rt: asyncio.Task[None] | None = None


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def paced(seconds: float, send_audio: Any, send_text: Any, *, phase: float = 0.0) -> None:
    """Send a stamped 20 ms audio frame every 20 ms, then ``bench-done``."""
    pcm = fr.pcm_chunk()
    count = int(seconds * 1000 / fr.CHUNK_MS)
    start = time.monotonic() + phase
    lags: list[float] = []
    for seq in range(count):
        due = start + seq * fr.CHUNK_MS / 1000
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.monotonic()
        lags.append(now - due)
        await send_audio(fr.stamped(pcm, now, seq), seq)
    await send_text(f"bench-done:{count}:{p99(lags) * 1000:.2f}")


def command(text: str, conn: Conn) -> tuple[str, float] | None:
    """Parse a ``bench-go`` command; ``rt`` resets the audio count at once.

    The reset happens here, in frame order, not in :func:`act`: the Nova server runs
    ``act`` as a task, and audio decoded before that task ran would be un-counted.
    """
    match = _GO.search(text)
    if match is None:
        return None
    if match.group(1) == "rt":
        conn.audio_in = 0
    return match.group(1), float(match.group(2) or 0)


# ----------------------------------------------------------------------------- OpenAI


async def serve_openai(rec: Recording) -> tuple[Any, dict[str, Any]]:
    from websockets.asyncio.server import serve

    cache: dict[int, list[str]] = {}
    created, updated = rec.handshake

    async def handler(ws: Any) -> None:
        conn = Conn()
        await ws.send(created)

        async def send_audio(pcm: bytes, seq: int) -> None:
            await ws.send(rec.audio_frame(pcm))

        async def send_text(text: str) -> None:
            for frame in rec.text_frames(text):
                await ws.send(frame)

        try:
            async for raw in ws:
                if "input_audio_buffer.append" in raw:
                    conn.audio_in += 1
                    continue
                if "bench-go" in raw:
                    cmd = command(raw, conn)
                    assert cmd is not None
                    await act(cmd, conn, cache, rec.burst, ws.send, send_audio, send_text)
                elif '"session.update"' in raw:
                    await ws.send(updated)
        finally:
            await stop_rt(conn)

    server = await serve(handler, "127.0.0.1", 0, max_size=None, compression=None)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, {"port": port}


async def act(  # noqa: PLR0917 - one call shape for the three servers
    cmd: tuple[str, float],
    conn: Conn,
    cache: dict[int, list[Any]],
    build: Any,
    send_frame: Any,
    send_audio: Any,
    send_text: Any,
) -> None:
    kind, value = cmd
    if kind == "receive":
        n = int(value)
        frames = cache.get(n)
        if frames is None:
            frames = cache[n] = build(n)
        for frame in frames:
            await send_frame(frame)
    elif kind == "flush":
        count, conn.audio_in = conn.audio_in, 0
        await send_text(f"bench-ack:{count}")
    elif kind == "rt":
        conn.rt = asyncio.create_task(paced(value, send_audio, send_text))


async def stop_rt(conn: Conn) -> None:
    if conn.rt is not None and not conn.rt.done():
        conn.rt.cancel()
        with contextlib.suppress(BaseException):
            await conn.rt


# ----------------------------------------------------------------------------- Gemini


async def serve_gemini(rec: Recording) -> tuple[Any, dict[str, Any]]:
    from websockets.asyncio.server import serve

    from bidi_core.testing import loopback_tls

    tls = loopback_tls()
    cache: dict[int, list[bytes]] = {}
    (setup_complete,) = rec.handshake

    async def handler(ws: Any) -> None:
        conn = Conn()
        await ws.recv()  # setup
        await ws.send(setup_complete)

        async def send_audio(pcm: bytes, seq: int) -> None:
            await ws.send(rec.audio_frame(pcm))

        async def send_text(text: str) -> None:
            for frame in rec.text_frames(text):
                await ws.send(frame)

        try:
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode()
                if "bench-go" in text:
                    cmd = command(text, conn)
                    assert cmd is not None
                    await act(cmd, conn, cache, rec.burst, ws.send, send_audio, send_text)
                elif '"audio"' in text:
                    conn.audio_in += 1
        finally:
            await stop_rt(conn)

    server = await serve(
        handler, "127.0.0.1", 0, ssl=tls.server_context, max_size=None, compression=None
    )
    port = next(iter(server.sockets)).getsockname()[1]
    return server, {"port": port, "ca_path": str(tls.ca_path)}


# ------------------------------------------------------------------------------- Nova


_CHUNK_HEADERS = {
    ":message-type": "event",
    ":event-type": "chunk",
    ":content-type": "application/json",
}


class _H2Peer:
    """One HTTP/2 connection: the event streams of its requests, with flow control."""

    def __init__(self, writer: asyncio.StreamWriter, rec: Recording) -> None:
        import h2.config
        import h2.connection

        from bidi_nova_sonic import _eventstream as es

        self.es = es
        self.rec = rec
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.window = asyncio.Event()
        self.closed = False
        self.decoders: dict[int, Any] = {}
        self.conns: dict[int, Conn] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def send_data(self, stream_id: int, data: bytes) -> None:
        import h2.exceptions

        view = memoryview(data)
        while view and not self.closed:
            try:
                window = self.conn.local_flow_control_window(stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            if size <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            try:
                self.conn.send_data(stream_id, bytes(view[:size]))
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return
            view = view[size:]
        await self.flush()

    def frame(self, inner: bytes) -> bytes:
        """Wrap a recorded Nova event as the fake does: base64 in ``{"bytes"}``, one message."""
        payload = json.dumps({"bytes": base64.b64encode(inner).decode("ascii")}).encode("ascii")
        return self.es.encode_message(_CHUNK_HEADERS, payload)

    def on_data(self, stream_id: int, data: bytes) -> None:
        decoder = self.decoders.get(stream_id)
        conn = self.conns.get(stream_id)
        if decoder is None or conn is None:
            return
        for outer in decoder.feed(data):
            if not outer.payload:
                continue
            inner = self.es.decode_message(outer.payload)
            event = base64.b64decode(json.loads(inner.payload)["bytes"])
            if b'"audioInput"' in event[:40]:
                conn.audio_in += 1
            elif b"bench-go" in event:
                cmd = command(event.decode(), conn)
                if cmd is not None:
                    self.spawn(self.act(stream_id, conn, cmd))

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def act(self, stream_id: int, conn: Conn, cmd: tuple[str, float]) -> None:
        rec = self.rec

        async def send_frame(data: bytes) -> None:
            await self.send_data(stream_id, data)

        async def send_audio(pcm: bytes, seq: int) -> None:
            if seq == 0:
                for inner in rec.audio_prologue:
                    await self.send_data(stream_id, self.frame(inner))
            await self.send_data(stream_id, self.frame(rec.audio_frame(pcm)))

        async def send_text(text: str) -> None:
            data = b"".join(self.frame(inner) for inner in rec.text_frames(text))
            await self.send_data(stream_id, data)

        async with self.lock:  # one burst at a time per connection
            await act(cmd, conn, _NOVA_CACHE, self.build, send_frame, send_audio, send_text)

    def build(self, n: int) -> list[bytes]:
        return [self.frame(inner) for inner in self.rec.burst(n)]


_NOVA_CACHE: dict[int, list[bytes]] = {}


async def serve_nova(rec: Recording) -> tuple[Any, dict[str, Any]]:
    import h2.events

    from bidi_core.testing import loopback_tls

    tls = loopback_tls(alpn=["h2"])

    async def on_event(peer: _H2Peer, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            sid = event.stream_id
            peer.decoders[sid] = peer.es.MessageDecoder()
            peer.conns[sid] = Conn()
            peer.conn.send_headers(
                sid,
                [
                    (":status", "200"),
                    ("content-type", "application/vnd.amazon.eventstream"),
                    ("x-amzn-requestid", str(uuid.uuid4())),
                ],
            )
        elif isinstance(event, h2.events.DataReceived):
            peer.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.data:
                peer.on_data(event.stream_id, event.data)
        elif isinstance(event, h2.events.StreamEnded):
            conn = peer.conns.pop(event.stream_id, None)
            if conn is not None:
                await stop_rt(conn)
            with contextlib.suppress(Exception):
                peer.conn.end_stream(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            conn = peer.conns.pop(event.stream_id, None)
            if conn is not None:
                await stop_rt(conn)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            peer.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            peer.closed = True
            peer.window.set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _H2Peer(writer, rec)
        peer.conn.initiate_connection()
        await peer.flush()
        try:
            while not peer.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for event in peer.conn.receive_data(data):
                    await on_event(peer, event)
                await peer.flush()
        except Exception:
            pass
        finally:
            peer.closed = True
            peer.window.set()
            for conn in peer.conns.values():
                await stop_rt(conn)
            for task in list(peer.tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls.server_context, limit=2**20)
    port = server.sockets[0].getsockname()[1]
    return server, {"port": port, "ca_path": str(tls.ca_path)}


# ------------------------------------------------------------------------------- main


async def main(provider: str) -> None:
    ignore_crt_body_writer(asyncio.get_running_loop())
    rec = await RECORDERS[provider](ANSWERS)
    start = {"openai": serve_openai, "gemini": serve_gemini, "nova": serve_nova}[provider]
    server, info = await start(rec)
    info["answer_frames"] = [len(answer) for answer in rec.answers]
    info["sentinel_frames"] = len(rec.sentinel)
    print(json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    cpu = os.environ.get("BENCH_SERVER_CPU")
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(cpu)})
    asyncio.run(main(sys.argv[1]))
