"""``bidi demo``: a spoken question, a tool call, a barge-in, with the simulated model.

Everything is real except the voice: the question is synthesized with the toy
speech codec of :mod:`bidi_core.testing.speech` into a 48 kHz stereo WAV, streamed
through :class:`~bidi_core.io.WavFileInput` (resampled to the model's 16 kHz mono),
answered by the simulated model with a tool call, and its spoken reply is written
to a WAV by :class:`~bidi_core.io.WavFileOutput` while the timeline is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import typing
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from .._protocol import ModelCapabilities
from ..agent import AgentEvent, AgentStats, BidiAgent
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    ToolResultEvent,
)
from ..simulated import SimulatedModel
from ..testing.speech import speak
from ..tools import tool
from ._chat import Listener, print_summary

__all__ = ["QUESTION", "get_weather", "run_demo", "demo"]

#: What the demo user says (the simulated model calls a tool it names).
QUESTION = 'what is the weather in paris? get_weather {"city": "paris"}'
_WAV_RATE = 48000


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city, e.g. "paris".
    """
    return f"sunny and 21 degrees in {city.title()}"


def write_question_wav(path: Path, text: str = QUESTION) -> Path:
    """Write *text*, spoken by the toy codec, as a 48 kHz stereo PCM16 WAV."""
    mono = speak(text, _WAV_RATE)
    stereo = bytearray()
    for i in range(0, len(mono), 2):
        stereo += mono[i : i + 2] * 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(_WAV_RATE)
        wav.writeframes(bytes(stereo))
    return path


class _Timeline:
    """A text stream that starts every line with the seconds since the demo began."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._at_line_start = True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self._at_line_start:
                self._stream.write(f"{time.monotonic() - self._start:6.2f}s  ")
            self._stream.write(piece)
            self._at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


class _Cues(Listener):
    """An output channel that tells the scripted user when to speak next."""

    def __init__(self) -> None:
        self.tool_answered = asyncio.Event()
        self.story_playing = asyncio.Event()
        self._tool_result_seen = False
        self._story: str | None = None
        self._story_chunks = 0
        self._responses = 0

    async def handle(self, event: AgentEvent) -> None:
        if isinstance(event, ToolResultEvent):
            self._tool_result_seen = True
        elif isinstance(event, BidiResponseStartEvent):
            self._responses += 1
            if self.tool_answered.is_set() and self._story is None:
                self._story = event.response_id
        elif isinstance(event, BidiResponseCompleteEvent):
            if self._tool_result_seen and event.stop_reason == "complete":
                self.tool_answered.set()
        elif isinstance(event, BidiAudioStreamEvent) and event.response_id == self._story:
            self._story_chunks += 1
            if self._story_chunks >= 25:  # half a second of the story has played
                self.story_playing.set()


class _ScriptedUser:
    """The demo user: asks by voice, then asks for a story and talks over it."""

    def __init__(
        self, question_wav: Path, cues: _Cues, timeline: _Timeline, *, realtime: bool
    ) -> None:
        from ..io import WavFileInput  # noqa: PLC0415 - IO loads on use

        self._question = WavFileInput(question_wav, realtime=realtime)
        self._cues = cues
        self._timeline = timeline
        self._realtime = realtime

    async def events(self, capabilities: ModelCapabilities) -> AsyncIterator[str | BidiInputEvent]:
        self._timeline.write(f"(user speaks {QUESTION!r})\n")
        async for event in self._question.events(capabilities):
            yield event
        await self._cues.tool_answered.wait()
        self._timeline.write("(user types 'tell me a story')\n")
        yield "tell me a story"
        await self._cues.story_playing.wait()  # then says "stop" over it (barge-in)
        rate = capabilities.input_sample_rates[0]
        barge_in = speak("stop", rate) + bytes(rate * 2 * 600 // 1000)
        step = rate * 2 * 20 // 1000
        for offset in range(0, len(barge_in), step):
            yield BidiAudioInputEvent(audio=barge_in[offset : offset + step], sample_rate=rate)
            if self._realtime:
                await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        await self._question.aclose()


async def demo(
    out_dir: Path, *, realtime: bool = False, stream: TextIO | None = None
) -> AgentStats:
    """Run the demo conversation; returns its stats (WAVs are written to *out_dir*)."""
    from ..io import Resampler, TextOutput, WavFileOutput  # noqa: PLC0415

    out = stream or sys.stdout
    # The question is a 48 kHz WAV resampled for the model: fail before anything starts.
    Resampler(_WAV_RATE, 16000, channels=2)
    question = write_question_wav(out_dir / "question.wav")
    reply = out_dir / "reply.wav"
    out.write(
        "bidi demo: a spoken question (a 48 kHz stereo WAV, resampled for the model), "
        "a tool call, a barge-in, with the offline simulated model.\n"
    )
    timeline = _Timeline(out)
    model = SimulatedModel(provider_config={"seed": 1, "pace": 1.0 if realtime else 0.0})
    agent = BidiAgent(
        model, tools=[get_weather], system_prompt="You are a helpful weather assistant."
    )
    cues = _Cues()
    outputs: list[Any] = [
        TextOutput(stream=typing.cast(TextIO, timeline), verbose=True),
        WavFileOutput(reply),
        cues,
    ]
    stats = await agent.run(
        inputs=[_ScriptedUser(question, cues, timeline, realtime=realtime)],
        outputs=outputs,
        settle_s=0.5,
    )
    print_summary(stats, out)
    out.write(f"The question is in {question}; the model's spoken replies are in {reply}.\n")
    return stats


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``bidi demo``."""
    asyncio.run(demo(Path(args.out), realtime=bool(args.realtime)))
    return 0
