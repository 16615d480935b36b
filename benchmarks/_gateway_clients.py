"""Clients of the ``gateway`` row (see :mod:`_gateway`), with the :class:`_drivers.Driver` API.

* :class:`EchoClient`: a bare ``websockets`` client of the echo baseline.
* :class:`RemoteClient`: the ``remote`` model (``bidi_core.remote``) of a ``bidi serve``.

Both let :func:`_worker._one_session` run a real-time session: 20 ms audio in, stamped
audio out, ``bench-done`` when the output ends and ``bench-ack`` counting the input.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import _frames as fr
from _drivers import Driver, _match


class EchoClient(Driver):
    """``WS /echo``: the output is the echo of the input (the server stamps it)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.url = f"ws://127.0.0.1:{info['port']}/echo"
        self.ws: Any = None
        self._expected = 0
        self._received = 0
        self._seconds = 0.0

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(self.url, compression=None, max_size=None)

    async def send_text(self, text: str) -> None:
        rt = re.search(r"bench-go:rt:([0-9.]+)", text)
        if rt:  # the echo server speaks when we do: as many chunks as we send
            self._seconds = float(rt.group(1))
            self._expected = int(self._seconds * 1000 / fr.CHUNK_MS)
            self._received = 0
            return
        await self.ws.send(text)

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send(pcm)

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        on_audio = self.on_audio
        n = 0
        done = _match(needle, "bench-done:0:0") is not None
        try:
            async with asyncio.timeout(self._seconds + 10 if done else 30):
                while True:
                    if done and self._received >= self._expected:
                        return f"bench-done:{self._expected}:0", n
                    frame = await self.ws.recv()
                    n += 1
                    if isinstance(frame, bytes):
                        self._received += 1
                        if on_audio is not None:
                            on_audio(frame)
                        continue
                    found = _match(needle, frame)
                    if found is not None:
                        return found, n
        except TimeoutError:
            if done:  # some echoes never came: the session reports them lost
                return f"bench-done:{self._expected}:0", n
            raise

    async def close(self) -> None:
        await self.ws.close()


class RemoteClient(Driver):
    """The ``remote`` model against ``bidi serve`` (``WS /v1/session``)."""

    def __init__(self, info: dict[str, Any], *, silent_input: bool) -> None:
        self.url = f"ws://127.0.0.1:{info['port']}/v1/session"
        self.silent_input = silent_input
        self.model: Any = None
        self.events: Any = None

    async def open(self) -> None:
        from bidi_core.events import (
            BidiAudioInputEvent,
            BidiAudioStreamEvent,
            BidiConnectionStartEvent,
            BidiTextInputEvent,
            BidiTranscriptStreamEvent,
        )
        from bidi_core.remote import RemoteModel

        self._audio_in = BidiAudioInputEvent
        self._text_in = BidiTextInputEvent
        self._audio_out = BidiAudioStreamEvent
        self._transcript = BidiTranscriptStreamEvent
        self.model = RemoteModel(client_config={"url": self.url, "open_timeout": 60})
        await self.model.start()
        self.rate = self.model.input_sample_rate()
        if self.silent_input:  # the simulated model would hear noise as a barge-in
            self.input_pcm = bytes(self.rate * 2 * fr.CHUNK_MS // 1000)
        self.events = self.model.receive().__aiter__()
        first = await self.events.__anext__()
        assert isinstance(first, BidiConnectionStartEvent), first

    async def send_text(self, text: str) -> None:
        await self.model.send(self._text_in(text=text))

    async def send_audio(self, pcm: bytes) -> None:
        await self.model.send(self._audio_in(audio=pcm, sample_rate=self.rate))

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        audio_type = self._audio_out
        transcript_type = self._transcript
        on_audio = self.on_audio
        n = 0
        async for event in self.events:
            n += 1
            kind = type(event)
            if kind is audio_type:
                if on_audio is not None:
                    on_audio(event.audio)
            elif kind is transcript_type and not event.is_final:
                found = _match(needle, event.text)
                if found is not None:
                    return found, n
        msg = "receive() ended"
        raise RuntimeError(msg)

    async def close(self) -> None:
        await self.model.stop()


def make_gateway_client(path: str, info: dict[str, Any]) -> Driver:
    """The client of one path of the row: ``echo``, ``simulated`` or ``openai``."""
    if path == "echo":
        return EchoClient(info)
    return RemoteClient(info, silent_input=path == "simulated")
