"""``WS /v1/twilio``: a phone call through Twilio Media Streams, bridged to a ``BidiAgent``.

Twilio opens the socket when a call reaches ``<Connect><Stream url=".../v1/twilio">``
(a bidirectional stream) and speaks JSON text frames:

* from Twilio: ``connected``; ``start`` (``streamSid``, ``callSid``, ``mediaFormat``,
  ``customParameters`` from the TwiML ``<Parameter>`` elements); ``media`` (base64
  8 kHz mu-law, ``track`` ``inbound``, about every 20 ms); ``mark`` (a mark we sent,
  echoed once the audio before it has played, or dropped by a ``clear``); ``dtmf``;
  ``stop`` (the call ended).
* to Twilio: ``media`` (``{"event": "media", "streamSid", "media": {"payload"}}``),
  ``mark`` (``{"event": "mark", "streamSid", "mark": {"name"}}``) and ``clear``
  (drop the audio Twilio has buffered: barge-in).

Twilio cannot set headers or, reliably, query strings on the stream URL, so the token
may also come as ``<Parameter name="token" value="..."/>`` (``start.customParameters``).
The model's audio is resampled to 8 kHz and mu-law encoded; a mark after every chunk
tells, when Twilio echoes it, how much of each response the caller heard, which is
what a barge-in truncates the model's answer to.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import logging
from typing import Any

from .. import _fastcodec as codec
from ..agent import AgentEvent
from ..audio import StreamResampler, to_mono
from ..events import BidiAudioStreamEvent, BidiInterruptionEvent, BidiResponseCompleteEvent
from . import _mulaw
from ._session import SessionBase

__all__ = ["TWILIO_RATE", "TwilioOutput", "TwilioSession", "twiml"]

logger = logging.getLogger("bidi_core.serve")

#: Twilio Media Streams audio: 8 kHz mono mu-law.
TWILIO_RATE = 8000
#: Seconds Twilio has to send ``start`` after the socket opens.
START_WAIT_S = 10.0
#: Marks awaiting their echo; older ones are forgotten (a stream that never echoes).
_MAX_PENDING_MARKS = 4096


def twiml(url: str, *, token_placeholder: str | None = "YOUR_TOKEN") -> str:
    """The TwiML that connects a call to this server's ``/v1/twilio`` endpoint.

    Args:
        url: The public ``wss://.../v1/twilio`` URL (Twilio needs TLS and a public host).
        token_placeholder: Text to put where the token goes (never the token itself,
            so that printing the snippet cannot leak it); None leaves it out.
    """
    parameter = (
        f'\n      <Parameter name="token" value="{token_placeholder}" />'
        if token_placeholder
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response>\n"
        "  <Connect>\n"
        f'    <Stream url="{url}">{parameter}\n'
        "    </Stream>\n"
        "  </Connect>\n"
        "</Response>"
    )


class TwilioOutput:
    """Plays the agent's audio into the call: 8 kHz mu-law ``media`` plus ``mark`` frames."""

    def __init__(self, session: TwilioSession, stream_sid: str) -> None:
        self._session = session
        self._sid = stream_sid
        self._resamplers: dict[tuple[str | None, int], StreamResampler] = {}
        self._sent_ms: dict[str | None, float] = {}
        self._heard_ms: dict[str, float] = {}
        self._marks: collections.OrderedDict[str, tuple[str | None, float]] = (
            collections.OrderedDict()
        )
        self._mark_seq = 0
        self._interrupted: collections.deque[str] = collections.deque(maxlen=64)
        #: ``clear`` frames sent (barge-ins).
        self.clears = 0

    async def handle(self, event: AgentEvent) -> None:
        if isinstance(event, BidiAudioStreamEvent):
            await self._audio(event)
        elif isinstance(event, BidiInterruptionEvent):
            if event.response_id:
                self._interrupted.append(event.response_id)
            # Marks still pending are of audio the caller will now never hear.
            self._marks.clear()
            self.clears += 1
            await self._session.send_json({"event": "clear", "streamSid": self._sid})
        elif isinstance(event, BidiResponseCompleteEvent):
            rid = event.response_id
            for key in [k for k in self._resamplers if k[0] == rid]:
                del self._resamplers[key]

    async def _audio(self, event: BidiAudioStreamEvent) -> None:
        rid = event.response_id
        if rid is not None and rid in self._interrupted:
            return
        pcm = event.audio
        if event.channels != 1:
            pcm = to_mono(pcm, event.channels)
        key = (rid, event.sample_rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = StreamResampler(event.sample_rate, TWILIO_RATE)
        pcm8k = resampler.process(pcm)
        if not pcm8k:
            return
        payload = codec.b64encode(_mulaw.encode(pcm8k))
        session = self._session
        await session.send_json(
            {"event": "media", "streamSid": self._sid, "media": {"payload": payload}}
        )
        sent = self._sent_ms[rid] = self._sent_ms.get(rid, 0.0) + len(pcm8k) / 2 / 8.0
        self._mark_seq += 1
        name = f"bidi-{self._mark_seq}"
        self._marks[name] = (rid, sent)
        while len(self._marks) > _MAX_PENDING_MARKS:
            self._marks.popitem(last=False)
        await session.send_json({"event": "mark", "streamSid": self._sid, "mark": {"name": name}})

    def marked(self, name: str) -> None:
        """Twilio echoed mark *name*: the audio sent before it has played."""
        entry = self._marks.pop(name, None)
        if entry is None:
            return  # cleared by a barge-in, or not ours
        rid, ms = entry
        if rid is not None:
            self._heard_ms[rid] = max(self._heard_ms.get(rid, 0.0), ms)
            while len(self._heard_ms) > 64:
                del self._heard_ms[next(iter(self._heard_ms))]

    def clear_audio(self) -> None:
        """The ``clear`` frame goes out when the interruption event is handled."""

    def played_ms(self, response_id: str) -> float | None:
        """How much of *response_id* the caller heard (the last echoed mark), if known."""
        return self._heard_ms.get(response_id)

    async def aclose(self) -> None:
        """Nothing to release."""


class TwilioSession(SessionBase):
    """One call: waits for Twilio's ``start``, then runs the agent until ``stop``.

    Args:
        token_checked: The upgrade request already carried the right token (or none
            is needed); otherwise ``start.customParameters["token"]`` must carry it.
    """

    def __init__(self, *args: Any, token_checked: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_checked = token_checked
        self.stream_sid: str | None = None
        self.output: TwilioOutput | None = None

    async def run(self) -> None:
        """Wait for ``start``, check the token, then converse until the call ends."""
        start = await self._wait_for_start()
        if start is None:
            return
        self.stream_sid = str(start.get("streamSid") or "")
        self.output = TwilioOutput(self, self.stream_sid)
        logger.info("session %s: Twilio call %s started", self.id, start.get("callSid"))
        await self.converse(self.output)

    async def _wait_for_start(self) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(START_WAIT_S):
                while True:
                    frame, closing = await self.receive_frame()
                    if closing is not None:
                        await self.close(*closing)
                        return None
                    if frame is None:
                        return None
                    message = _parse(frame)
                    if message is None or message.get("event") != "start":
                        continue  # "connected", or noise before the stream starts
                    start = message.get("start")
                    if not isinstance(start, dict):
                        await self.close(1008, "start message without a start object")
                        return None
                    if not self._token_checked:
                        params = start.get("customParameters")
                        given = params.get("token") if isinstance(params, dict) else None
                        token = self.config.token
                        if token is None or not token.matches(
                            given if isinstance(given, str) else None
                        ):
                            logger.warning("session %s: Twilio stream with a bad token", self.id)
                            await self.close(1008, "a valid token is required")
                            return None
                    start.setdefault("streamSid", message.get("streamSid"))
                    return start
        except TimeoutError:
            await self.close(1008, "no start message")
            return None

    async def read_client(self) -> tuple[int, str] | None:
        output = self.output
        assert output is not None
        while True:
            frame, closing = await self.receive_frame()
            if closing is not None:
                return closing
            if frame is None:
                return None
            message = _parse(frame)
            if message is None:
                continue
            kind = message.get("event")
            if kind == "media":
                pcm = _media_pcm(message)
                if pcm is None:
                    logger.debug("session %s: unreadable Twilio media frame", self.id)
                    continue
                await self.audio_in(pcm, TWILIO_RATE)
            elif kind == "mark":
                mark = message.get("mark")
                name = mark.get("name") if isinstance(mark, dict) else None
                if isinstance(name, str):
                    output.marked(name)
            elif kind == "stop":
                return (1000, "call ended")
            else:
                logger.debug("session %s: Twilio %r event ignored", self.id, kind)

    async def error(self, message: str, code: str, *, recoverable: bool = True) -> None:
        """Twilio has no channel for errors: they are logged."""
        logger.warning("session %s (Twilio): %s [%s]", self.id, message, code)


def _parse(frame: str | bytes) -> dict[str, Any] | None:
    if isinstance(frame, bytes):
        return None
    try:
        message = codec.loads(frame)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _media_pcm(message: dict[str, Any]) -> bytes | None:
    media = message.get("media")
    if not isinstance(media, dict):
        return None
    track = media.get("track", "inbound")
    if track not in ("inbound", "inbound_track"):
        return None  # only the caller's side is audio for the agent
    payload = media.get("payload")
    if not isinstance(payload, str):
        return None
    try:
        ulaw = codec.b64decode(payload)
    except (binascii.Error, ValueError):
        return None
    return _mulaw.decode(ulaw)
