"""Phone calls: G.711 mu-law, and ``WS /v1/twilio`` against a Twilio Media Streams test client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bidi_core import tool
from bidi_core.serve import _mulaw as mulaw
from bidi_core.serve import twiml
from bidi_core.serve.testing import gateway
from bidi_core.simulated import SimulatedModel
from bidi_core.testing.speech import speak, transcribe

STEP = 20.0

# ------------------------------------------------------------------------- mu-law


def g191_compress(x: int) -> int:
    """ITU-T G.191 ``ulaw_compress`` for one 16-bit sample (the standard's reference code)."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i:
        segno += 1
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = (high << 4) | low
    return out | 0x80 if x >= 0 else out


def test_mulaw_encoding_matches_the_g711_reference_for_every_sample() -> None:
    """Every 16-bit sample encodes as the ITU-T reference software encodes it."""
    pcm = struct.pack("<65536h", *range(-32768, 32768))
    expected = bytes(g191_compress(x) for x in range(-32768, 32768))
    assert mulaw.encode(pcm) == expected


# G.711 Table 2a (mu-law): code word -> decoder output (14-bit units x 4 = 16-bit PCM).
# Segment ends, the zero codes and the extremes.
G711_DECODED = {
    0xFF: 0,
    0x7F: 0,
    0xFE: 8,  # 2 x 4
    0xF0: 120,  # 30 x 4
    0xEF: 132,  # 33 x 4: first step of segment 1
    0xE0: 372,  # 93 x 4
    0xDF: 396,  # 99 x 4: segment 2
    0xCF: 924,  # 231 x 4: segment 3
    0xBF: 1980,  # 495 x 4: segment 4
    0xAF: 4092,  # 1023 x 4: segment 5
    0x9F: 8316,  # 2079 x 4: segment 6
    0x8F: 16764,  # 4191 x 4: segment 7
    0x80: 32124,  # 8031 x 4: the largest
    0x00: -32124,
    0x70: -120,
    0x6F: -132,
}


def test_mulaw_decoding_gives_the_g711_table_values() -> None:
    """Code words decode to G.711's reconstruction values."""
    codes = bytes(G711_DECODED)
    decoded = struct.unpack(f"<{len(codes)}h", mulaw.decode(codes))
    assert dict(zip(codes, decoded, strict=True)) == G711_DECODED


def test_mulaw_round_trips_every_code_word() -> None:
    """Decoding then encoding gives every code word back (the two zeros meet at 0xFF)."""
    codes = bytes(range(256))
    again = mulaw.encode(mulaw.decode(codes))
    assert again == bytes(0xFF if c == 0x7F else c for c in codes)


def test_mulaw_agrees_with_audioop_where_audioop_follows_the_standard() -> None:
    """audioop (3.12, removed in 3.13) decodes alike and encodes non-negative samples alike."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    codes = bytes(range(256))
    assert mulaw.decode(codes) == audioop.ulaw2lin(codes, 2)
    positive = struct.pack("<32768h", *range(32768))
    assert mulaw.encode(positive) == audioop.lin2ulaw(positive, 2)


# ------------------------------------------------------------------ Twilio client


class TwilioCall:
    """A Twilio Media Streams test client: plays a caller and Twilio's player.

    It sends ``connected``, ``start``, 20 ms ``media`` frames of 8 kHz mu-law, and
    ``stop``; it keeps outbound ``media``, and "plays" it: a mark is echoed once the
    audio queued before it would have played in real time, and ``clear`` drops the
    queue and echoes the pending marks, as Twilio does.
    """

    def __init__(
        self, ws: ClientConnection, sid: str = "MZ00000000000000000000000000000001"
    ) -> None:
        self.ws = ws
        self.sid = sid
        self.seq = 0
        self.chunk = 0
        self.received_ulaw = bytearray()
        self.since_clear = bytearray()
        self.clears = 0
        self.marks_echoed: list[str] = []
        self.other: list[dict[str, Any]] = []
        self._queue_ms = 0.0
        self._reader = asyncio.create_task(self._read())

    def _next(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def begin(self, custom: dict[str, str] | None = None) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "streamSid": self.sid,
                "start": {
                    "accountSid": "AC00000000000000000000000000000001",
                    "streamSid": self.sid,
                    "callSid": "CA00000000000000000000000000000001",
                    "tracks": ["inbound"],
                    "customParameters": custom or {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    async def speak(self, text: str, *, tail_ms: int = 600) -> None:
        pcm = speak(text, 8000) + bytes(8000 * 2 * tail_ms // 1000)
        ulaw = mulaw.encode(pcm)
        for i in range(0, len(ulaw), 160):  # 20 ms frames, in real time
            self.chunk += 1
            await self.send(
                {
                    "event": "media",
                    "sequenceNumber": self._next(),
                    "streamSid": self.sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self.chunk),
                        "timestamp": str(self.chunk * 20),
                        "payload": base64.b64encode(ulaw[i : i + 160]).decode(),
                    },
                }
            )
            await asyncio.sleep(0.02)

    async def hang_up(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamSid": self.sid,
                "stop": {"accountSid": "AC1", "callSid": "CA1"},
            }
        )

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                kind = message.get("event")
                assert message.get("streamSid") == self.sid, message
                if kind == "media":
                    ulaw = base64.b64decode(message["media"]["payload"])
                    self.received_ulaw += ulaw
                    self.since_clear += ulaw
                    self._queue_ms += len(ulaw) / 8.0
                elif kind == "mark":
                    name = message["mark"]["name"]
                    delay = self._queue_ms / 1000.0
                    self._queue_ms = 0.0
                    asyncio.get_running_loop().call_later(
                        delay, lambda n=name: asyncio.ensure_future(self._echo(n))
                    )
                elif kind == "clear":
                    self.clears += 1
                    self.since_clear = bytearray()
                    self._queue_ms = 0.0
                else:
                    self.other.append(message)
        except ConnectionClosed:
            pass

    async def _echo(self, name: str) -> None:
        self.marks_echoed.append(name)
        with contextlib.suppress(ConnectionClosed):
            await self.send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next(),
                    "streamSid": self.sid,
                    "mark": {"name": name},
                }
            )

    def heard(self, *, since_clear: bool = False) -> str:
        audio = self.since_clear if since_clear else self.received_ulaw
        return transcribe(mulaw.decode(bytes(audio)), 8000)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


@tool
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


async def wait_for(condition: Any) -> None:
    async with asyncio.timeout(STEP):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_phone_call_is_answered_through_twilio_media_streams() -> None:
    """Caller speech (8 kHz mu-law) reaches the model; its spoken answer comes back as mu-law."""
    async with gateway(
        "simulated",
        model_factory=lambda: SimulatedModel(provider_config={"seed": 5}),
        tool_functions=[get_weather],
    ) as gw:
        call = TwilioCall(await connect(gw.twilio_url))
        await call.begin()
        await call.speak('weather? get_weather {"city": "paris"}')
        await wait_for(lambda: "returned" in call.heard())
        (model,) = gw.models
        assert isinstance(model, SimulatedModel)
        assert model.assistant is not None
        await wait_for(lambda: call.heard().endswith("get_weather returned sunny in paris."))
        await call.hang_up()
        async with asyncio.timeout(STEP):
            await call._reader  # the server closes the socket after "stop"
        assert call.ws.close_code == 1000
        await wait_for(lambda: model.assistant is None or model.state.value != "open")
    assert call.marks_echoed  # marks followed the audio


async def test_a_caller_barging_in_clears_twilios_buffer_and_truncates_at_what_was_heard() -> None:
    """Speech over the answer: a clear frame, and the model truncated at the echoed marks."""
    async with gateway(
        "simulated", model_factory=lambda: SimulatedModel(provider_config={"seed": 6})
    ) as gw:
        call = TwilioCall(await connect(gw.twilio_url))
        await call.begin()
        await call.speak("tell me a story", tail_ms=400)
        await wait_for(lambda: len(call.marks_echoed) >= 10)  # part of the story was heard
        await call.speak("stop")
        await wait_for(lambda: call.clears == 1)
        (model,) = gw.models
        assert isinstance(model, SimulatedModel)
        await wait_for(lambda: bool(model.truncations))
        ((_rid, played_ms),) = model.truncations
        assert played_ms > 0
        # After the clear, only the answer to "stop" was played: the story's rest never was.
        await wait_for(lambda: call.heard(since_clear=True) == "you said: stop.")
        await call.close()


async def test_the_token_may_come_as_a_stream_parameter() -> None:
    """With a token set: <Parameter name="token"> in start opens the call; a wrong one closes it."""
    async with gateway("simulated", token="phone-secret") as gw:
        good = TwilioCall(await connect(gw.twilio_url))
        await good.begin({"token": "phone-secret"})
        await good.speak("hello phone")
        await wait_for(lambda: good.heard().endswith("you said: hello phone."))
        await good.close()
        bad = TwilioCall(await connect(gw.twilio_url))
        await bad.begin({"token": "guess"})
        async with asyncio.timeout(STEP):
            await bad._reader
        assert bad.ws.close_code == 1008
        never_started = gw.models[-1]
        assert isinstance(never_started, SimulatedModel)
        assert never_started.assistant is None  # the bad call's model never connected


def test_the_twiml_snippet_connects_a_bidirectional_stream() -> None:
    """<Connect><Stream> (bidirectional) at the URL, with a token placeholder, never a token."""
    snippet = twiml("wss://gw.example.com/v1/twilio")
    assert "<Connect>" in snippet
    assert '<Stream url="wss://gw.example.com/v1/twilio">' in snippet
    assert '<Parameter name="token" value="YOUR_TOKEN" />' in snippet
    assert "Parameter" not in twiml("wss://x/v1/twilio", token_placeholder=None)
