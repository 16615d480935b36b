"""Fuzzing the Live server-frame decoder: garbage frames give error events, never a crash.

Each frame goes through the real google-genai parse (``AsyncSession._receive``) and,
when the SDK accepts it, through :class:`ServerTranslator`. The ``ci`` hypothesis
profile runs 100 examples per test; ``nox -s fuzz`` runs 1,000.
"""

from __future__ import annotations

import asyncio
import base64
import warnings
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai.live import AsyncSession
from hypothesis import given

from bidi_core.testing.fuzz import check_decoder, frame_sequences
from bidi_gemini_live._wire import ServerTranslator

PCM = base64.b64encode(b"\x01\x00" * 240).decode()
AUDIO = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": PCM}}
USAGE = {
    "promptTokenCount": 3,
    "responseTokenCount": 5,
    "totalTokenCount": 8,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
    "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 5}],
}
VALID: list[dict[str, Any]] = [
    {"setupComplete": {}},
    {"serverContent": {"modelTurn": {"role": "model", "parts": [AUDIO]}}},
    {"serverContent": {"outputTranscription": {"text": "Hello "}}, "usageMetadata": USAGE},
    {"serverContent": {"modelTurn": {"parts": [{"text": "Hi"}]}}},
    {"serverContent": {"inputTranscription": {"text": "what", "finished": True}}},
    {"serverContent": {"interrupted": True}},
    {"serverContent": {"generationComplete": True, "turnComplete": True}},
    {"serverContent": {"turnComplete": True, "turnCompleteReason": "MALFORMED_FUNCTION_CALL"}},
    {"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {"a": 1}}]}},
    {"toolCallCancellation": {"ids": ["c1"]}},
    {"goAway": {"timeLeft": "5s"}},
    {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}},
    {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}},
]


class _OneFrame:
    """Stands in for the SDK's websocket: recv() returns one frame."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def recv(self, decode: bool = False) -> bytes:
        return self.raw


_CLIENT = genai.Client(api_key="fuzz-key")


def sdk_parse(raw: bytes) -> Any:
    """The SDK's own parse of one frame, or None where the plugin skips it."""
    session = AsyncSession(api_client=_CLIENT._api_client, websocket=_OneFrame(raw))  # type: ignore[arg-type]
    try:
        with warnings.catch_warnings():
            # The SDK warns about unknown enum values (and keeps them): not an error here.
            warnings.simplefilter("ignore", UserWarning)
            return asyncio.run(session._receive())
    except (ValueError, genai_errors.APIError):
        return None  # the plugin yields a BidiErrorEvent (or a typed error) for these
    except (TypeError, AttributeError, KeyError):
        return None  # SDK crashes on non-object JSON: the plugin skips the frame too


@given(frames=frame_sequences(VALID))
def test_translator_survives_garbage_frames(frames: list[bytes]) -> None:
    """Whatever the SDK makes of a garbage frame, the translator answers with events."""
    translator = ServerTranslator(text_transcript=False)
    for frame in frames:
        message = sdk_parse(frame)
        if message is not None:
            check_decoder(translator.feed, message)


async def test_a_frame_that_is_json_but_not_an_object_is_skipped() -> None:
    """A JSON array (or number) frame, which the SDK cannot parse, is a skipped frame."""
    from bidi_core import BidiErrorEvent, BidiTextInputEvent, BidiTranscriptStreamEvent
    from bidi_gemini_live.testing import serve

    from .conftest import make_model

    async with serve() as fake:
        model = make_model(fake)
        await model.start()
        try:
            events = model.receive()
            await anext(events)  # connection start
            for garbage in ([1, 2], 7, "text"):
                await fake.inject(garbage, raw=True)  # type: ignore[arg-type]
                async with asyncio.timeout(10):
                    error = await anext(events)
                assert isinstance(error, BidiErrorEvent)
                assert error.code == "malformed_frame"
            await model.send(BidiTextInputEvent(text="still here"))
            async with asyncio.timeout(10):
                async for event in events:
                    if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                        assert "still here" in event.text
                        break
        finally:
            await model.stop()
