"""``WS /v1/session`` of ``bidi serve``: the protocol, limits, malformed input, vanishing clients.

Every test runs the real stack: uvicorn + Starlette on 127.0.0.1, a websockets client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bidi_core import BidiModelStateError, ModelState, tool
from bidi_core.serve.testing import Gateway, gateway
from bidi_core.simulated import SimulatedModel
from bidi_core.testing.speech import speak, transcribe

STEP = 20.0  # seconds any one wait may take before the test fails (no hangs)


@tool
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


class Client:
    """A bare protocol client: JSON text frames and binary PCM frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio: list[bytes] = []
        self.hello: dict[str, Any] = {}

    async def next(self) -> dict[str, Any] | bytes:
        async with asyncio.timeout(STEP):
            frame = await self.ws.recv()
        if isinstance(frame, bytes):
            self.audio.append(frame)
            return frame
        data: dict[str, Any] = json.loads(frame)
        self.events.append(data)
        return data

    async def until(self, kind: str, **match: Any) -> dict[str, Any]:
        while True:
            frame = await self.next()
            if (
                isinstance(frame, dict)
                and frame.get("type") == kind
                and all(frame.get(k) == v for k, v in match.items())
            ):
                return frame

    async def send(self, data: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(data))

    async def say(self, text: str, *, realtime: bool = False) -> None:
        rate = self.hello["input_sample_rate"]
        pcm = speak(text, rate) + bytes(rate * 2 * 600 // 1000)
        step = rate * 2 * 20 // 1000
        for i in range(0, len(pcm), step):
            await self.ws.send(pcm[i : i + step])
            if realtime:
                await asyncio.sleep(0.02)


@pytest.fixture
async def simulated() -> AsyncIterator[Gateway]:
    """A gateway serving the simulated model with one tool."""
    async with gateway(
        "simulated",
        model_factory=lambda: SimulatedModel(provider_config={"seed": 3}),
        tool_functions=[get_weather],
    ) as gw:
        yield gw


async def open_client(gw: Gateway, **kwargs: Any) -> Client:
    ws = await connect(gw.ws_url, **kwargs)
    client = Client(ws)
    hello = await client.next()
    assert isinstance(hello, dict)
    client.hello = hello
    return client


async def closed_by_server(client: Client) -> ConnectionClosed:
    """Read until the server closes the socket; return how."""
    try:
        while True:
            await client.next()
    except ConnectionClosed as exc:
        return exc


async def wait_for(condition: Any, what: str) -> None:
    async with asyncio.timeout(STEP):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_server_greets_first_then_streams_the_agent_events(simulated: Gateway) -> None:
    """First a session message with rates and capabilities, then to_dict() events, audio binary."""
    client = await open_client(simulated)
    hello = client.hello
    assert hello["type"] == "session"
    assert hello["model"] == "simulated"
    assert (hello["input_sample_rate"], hello["output_sample_rate"]) == (16000, 24000)
    assert hello["capabilities"]["output_sample_rate"] == 24000
    first = await client.next()
    assert isinstance(first, dict)
    assert first["type"] == "bidi_connection_start"
    await client.send({"type": "bidi_text_input", "text": "hello gateway", "role": "user"})
    done = await client.until("bidi_response_complete")
    assert done["stop_reason"] == "complete"
    finals = [
        e["text"] for e in client.events if e["type"] == "bidi_transcript_stream" and e["is_final"]
    ]
    assert finals == ["You said: hello gateway."]
    assert transcribe(b"".join(client.audio), 24000) == "you said: hello gateway."
    assert any(e["type"] == "bidi_usage" for e in client.events)
    await client.ws.close()


async def test_binary_audio_is_the_users_speech(simulated: Gateway) -> None:
    """PCM16 binary frames at input_sample_rate are transcribed and answered."""
    client = await open_client(simulated)
    await client.say("hello audio")
    user = await client.until("bidi_transcript_stream", role="user", is_final=True)
    assert user["text"] == "hello audio"
    await client.until("bidi_response_complete", stop_reason="complete")
    await client.ws.close()


async def test_the_servers_tools_run_and_their_results_are_shown(simulated: Gateway) -> None:
    """A tool call runs on the server; the client sees the call, the result and the answer."""
    client = await open_client(simulated)
    await client.send({"type": "bidi_text_input", "text": 'weather? get_weather {"city": "paris"}'})
    use = await client.until("tool_use_stream")
    assert use["tool_use"]["name"] == "get_weather"
    result = await client.until("tool_result")
    assert result["tool_result"]["content"] == [{"text": "sunny in paris"}]
    final = await client.until("bidi_transcript_stream", role="assistant", is_final=True)
    assert final["text"] == "get_weather returned sunny in paris."
    await client.ws.close()


@pytest.mark.parametrize(
    ("frame", "code", "says"),
    [
        ("not json", "bad_message", "JSON object"),
        ("[1, 2]", "bad_message", "JSON object"),
        ('{"type": "bidi_txt_input", "text": "x"}', "unknown_type", "Unknown message type"),
        ('{"no": "type"}', "unknown_type", "Unknown message type"),
        ('{"type": "bidi_text_input"}', "bad_message", "missing the required field 'text'"),
        ('{"type": "bidi_text_input", "text": 3}', "bad_message", "must be a str"),
        ('{"type": "bidi_text_input", "text": "x", "role": "system"}', "not_allowed", "role"),
        (
            '{"type": "tool_result", "tool_result": {"toolUseId": "t", "status": "success", '
            '"content": []}}',
            "not_allowed",
            "not the client's",
        ),
        ('{"type": "bidi_response_start", "response_id": "r"}', "not_allowed", "output event"),
        ('{"type": "playback", "response_id": 1, "played_ms": 2}', "bad_message", "playback"),
        ('{"type": "playback", "response_id": "r", "played_ms": -1}', "bad_message", "playback"),
        (
            '{"type": "bidi_image_input", "image": "AAA=", "mime_type": "image/gif"}',
            "unsupported_input",
            "image/gif",
        ),
    ],
)
async def test_a_bad_message_gets_an_error_event_and_the_session_goes_on(
    simulated: Gateway, frame: str, code: str, says: str
) -> None:
    """Unknown, malformed or forbidden messages are answered with bidi_error; talk continues."""
    client = await open_client(simulated)
    await client.ws.send(frame)
    error = await client.until("bidi_error")
    assert error["code"] == code
    assert says in error["message"]
    assert error["recoverable"] is True
    await client.send({"type": "bidi_text_input", "text": "still here"})
    final = await client.until("bidi_transcript_stream", role="assistant", is_final=True)
    assert final["text"] == "You said: still here."
    await client.ws.close()


async def test_odd_length_audio_is_refused_with_an_error(simulated: Gateway) -> None:
    """A binary frame that is not whole PCM16 samples gets bad_audio; the session goes on."""
    client = await open_client(simulated)
    await client.ws.send(b"\x00\x01\x02")
    error = await client.until("bidi_error")
    assert error["code"] == "bad_audio"
    await client.send({"type": "bidi_text_input", "text": "after"})
    await client.until("bidi_response_complete")
    await client.ws.close()


async def test_an_oversize_frame_closes_the_session_with_1009() -> None:
    """A message over max_message_bytes closes with 1009 (message too big)."""
    async with gateway("simulated", max_message_bytes=8192) as gw:
        client = await open_client(gw)
        await client.ws.send(bytes(8194))
        closed = await closed_by_server(client)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1009
        await wait_for(lambda: gw.models[0].state is ModelState.IDLE, "the model to stop")


async def test_audio_faster_than_real_time_is_refused(simulated: Gateway) -> None:
    """Beyond the jitter allowance, audio sent faster than real time is refused with an error."""
    client = await open_client(simulated)
    second = bytes(16000 * 2)  # one second of silence at 16 kHz
    for _ in range(5):
        await client.ws.send(second)
    error = await client.until("bidi_error", code="input_rate_exceeded")
    assert "faster than real time" in error["message"]
    (model,) = simulated.models
    assert isinstance(model, SimulatedModel)
    assistant = model.assistant
    assert assistant is not None
    await wait_for(lambda: len(assistant.inputs) >= 2, "the allowed audio")
    received = sum(n for kind, n in assistant.inputs if kind == "audio")
    assert received <= 2 * 16000 * 2  # the 2 s burst allowance, no more
    await client.ws.close()


async def test_real_time_audio_is_never_refused(simulated: Gateway) -> None:
    """Audio paced in real time passes the rate limit whole."""
    client = await open_client(simulated)
    await client.say("real time please", realtime=True)
    user = await client.until("bidi_transcript_stream", role="user", is_final=True)
    assert user["text"] == "real time please"
    assert not [e for e in client.events if e["type"] == "bidi_error"]
    await client.ws.close()


async def test_an_idle_session_is_closed() -> None:
    """A client that sends nothing for idle_timeout_s gets an error event and a close."""
    async with gateway("simulated", idle_timeout_s=0.5) as gw:
        client = await open_client(gw)
        closed = await closed_by_server(client)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (1000, "idle timeout")
        error = [e for e in client.events if e["type"] == "bidi_error"]
        assert error[-1]["code"] == "idle_timeout"
        assert error[-1]["recoverable"] is False


async def test_sessions_beyond_max_sessions_are_refused_with_503() -> None:
    """max_sessions open sessions; the next is refused with HTTP 503 and a sentence."""
    async with gateway("simulated", max_sessions=2) as gw:
        first = await open_client(gw)
        second = await open_client(gw)
        with pytest.raises(InvalidStatus) as refused:
            await connect(gw.ws_url)
        assert refused.value.response.status_code == 503
        assert b"limit of 2 sessions" in refused.value.response.body
        await first.ws.close()
        await wait_for(lambda: len(gw.models) == 2 and _idle(gw.models[0]), "a free slot")
        third = await open_client(gw)
        await second.ws.close()
        await third.ws.close()


def _idle(model: Any) -> bool:
    return bool(model.state is ModelState.IDLE)


async def test_a_client_vanishing_mid_answer_stops_its_agent(simulated: Gateway) -> None:
    """A client that drops the TCP connection mid-answer: its model and agent stop, slot freed."""
    client = await open_client(simulated)
    await client.send({"type": "bidi_text_input", "text": "tell me a story"})
    await client.until("bidi_response_start")
    while not client.audio:
        await client.next()
    transport = client.ws.transport
    transport.abort()  # no close frame: the client is simply gone
    (model,) = simulated.models
    await wait_for(lambda: _idle(model), "the model to stop")
    with pytest.raises(BidiModelStateError):
        await model.send(object())  # type: ignore[arg-type]
    async with asyncio.timeout(STEP):
        await client.ws.wait_closed()
    # The server is still fine: a new session works.
    again = await open_client(simulated)
    await again.send({"type": "bidi_text_input", "text": "hello again"})
    await again.until("bidi_response_complete")
    await again.ws.close()


async def test_barge_in_truncates_at_what_the_client_reported_playing() -> None:
    """playback reports decide the truncation; audio of the interrupted answer stops."""
    async with gateway(
        "simulated", model_factory=lambda: SimulatedModel(provider_config={"seed": 4})
    ) as gw:
        client = await open_client(gw)
        await client.send({"type": "bidi_text_input", "text": "tell me a story"})
        start = await client.until("bidi_response_start")
        rid = start["response_id"]
        while sum(map(len, client.audio)) < 24000 * 2:  # a second of the story has arrived
            await client.next()
        await client.send({"type": "playback", "response_id": rid, "played_ms": 420})
        await client.say("stop")
        interruption = await client.until("bidi_interruption")
        assert interruption["response_id"] == rid
        audio_at_interruption = len(client.audio)
        await client.until("bidi_response_complete", response_id=rid, stop_reason="interrupted")
        answer = await client.until("bidi_transcript_stream", role="assistant", is_final=True)
        assert answer["text"] == "You said: stop."
        (model,) = gw.models
        assert isinstance(model, SimulatedModel)
        await wait_for(lambda: bool(model.truncations), "the truncation")
        assert model.truncations == [(rid, 420)]
        # After the interruption only the new answer's audio arrived.
        later = b"".join(client.audio[audio_at_interruption:])
        assert transcribe(later, 24000) == "you said: stop."
        await client.ws.close()


async def test_a_model_time_limit_restarts_and_the_conversation_goes_on(simulated: Gateway) -> None:
    """The server's agent restarts its model at a time limit; the client sees a restart event."""
    client = await open_client(simulated)
    await client.send({"type": "bidi_text_input", "text": "remember the tulips"})
    await client.until("bidi_response_complete")
    (model,) = simulated.models
    assert isinstance(model, SimulatedModel)
    assert model.assistant is not None
    model.assistant.inject_fault("time_limit")
    restart = await client.until("bidi_connection_restart")
    assert restart["reason"] == "timeout"
    await client.until("bidi_connection_start")
    await client.send({"type": "bidi_text_input", "text": "recall"})
    final = await client.until("bidi_transcript_stream", role="assistant", is_final=True)
    assert final["text"] == "Earlier you said: remember the tulips."
    await client.ws.close()


async def test_a_model_that_fails_ends_the_session_with_1011(simulated: Gateway) -> None:
    """A broken provider connection: a non-recoverable bidi_error, then close 1011."""
    client = await open_client(simulated)
    await client.send({"type": "bidi_text_input", "text": "[fault:disconnect]"})
    closed = await closed_by_server(client)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    error = [e for e in client.events if e["type"] == "bidi_error"][-1]
    assert error["code"] == "model_failed"
    assert error["recoverable"] is False


async def test_a_model_that_cannot_start_is_reported_and_closed() -> None:
    """start() failing: the client gets start_failed and close 1011, the slot is freed."""

    class Broken(SimulatedModel):
        async def _open(self, **kwargs: Any) -> None:
            raise OSError("no route to the provider at secret-internal-host:443")

    async with gateway("simulated", model_factory=Broken) as gw:
        client = await open_client(gw)
        closed = await closed_by_server(client)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1011
        error = [e for e in client.events if e["type"] == "bidi_error"][-1]
        assert error["code"] == "start_failed"
        assert "secret-internal-host" not in error["message"]  # operator details stay home
        body = await _health(gw)
        assert body["sessions"] == 0


async def _health(gw: Gateway) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    data: dict[str, Any] = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    return data


async def test_the_page_and_its_scripts_are_served_from_this_server_only(
    simulated: Gateway,
) -> None:
    """GET / and its scripts come from the wheel, with a policy allowing no other host."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", int(simulated.url.rsplit(":", 1)[1])
    )
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "default-src 'self'" in head
    assert '<script type="module" src="/static/app.js">' in body
    assert "http://" not in body
    assert "https://" not in body


def test_the_pages_files_ship_in_the_installed_package() -> None:
    """index.html, the scripts and both worklets are package data of the installed bidi-core."""
    import importlib.resources

    from bidi_core.serve._app import STATIC_FILES

    static = importlib.resources.files("bidi_core.serve") / "static"
    for name in STATIC_FILES:
        assert (static / name).is_file(), name
    assert "registerProcessor" in (static / "playback-worklet.js").read_text()
    assert "registerProcessor" in (static / "capture-worklet.js").read_text()


async def test_accepted_connections_have_nagle_off() -> None:
    """serving()'s socket hands TCP_NODELAY to every connection (no Nagle delay on audio)."""
    import socket

    from bidi_core.serve._run import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            raw = transport.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    port = sock.getsockname()[1]
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    nodelay = await asyncio.wait_for(accepted, STEP)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    assert nodelay != 0
