"""Fuzzing the Nova output decoder: garbage chunks give error events, never a crash.

A chunk goes through :func:`decode_chunk` (a ``ValueError`` there becomes a skipped
chunk with a ``BidiErrorEvent``, as the model does) and :class:`OutputTranslator`.
The ``ci`` hypothesis profile runs 100 examples per test; ``nox -s fuzz`` runs 1,000.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given

from bidi_core import BidiErrorEvent, BidiOutputEvent
from bidi_core.testing.fuzz import check_decoder, frame_sequences
from bidi_nova_sonic import _wire as wire

PCM = base64.b64encode(b"\x01\x00" * 240).decode()
IDS = {"sessionId": "s", "promptName": "p", "completionId": "c1"}
FINAL = json.dumps({"generationStage": "FINAL"})
SPECULATIVE = json.dumps({"generationStage": "SPECULATIVE"})
AUDIO_CFG = {"mediaType": "audio/lpcm", "sampleRateHertz": 24000, "sampleSizeBits": 16}


def _event(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"event": {name: {**IDS, **body}}}


VALID: list[dict[str, Any]] = [
    _event("completionStart", {}),
    _event(
        "contentStart",
        {"contentId": "t1", "type": "TEXT", "role": "USER", "additionalModelFields": FINAL},
    ),
    _event("textOutput", {"contentId": "t1", "role": "USER", "content": "what time"}),
    _event("contentEnd", {"contentId": "t1", "type": "TEXT", "stopReason": "END_TURN"}),
    _event(
        "contentStart",
        {
            "contentId": "t2",
            "type": "TEXT",
            "role": "ASSISTANT",
            "additionalModelFields": SPECULATIVE,
        },
    ),
    _event("textOutput", {"contentId": "t2", "role": "ASSISTANT", "content": "It is noon."}),
    _event(
        "contentStart",
        {
            "contentId": "a1",
            "type": "AUDIO",
            "role": "ASSISTANT",
            "audioOutputConfiguration": AUDIO_CFG,
        },
    ),
    _event("audioOutput", {"contentId": "a1", "content": PCM}),
    _event(
        "textOutput", {"contentId": "t2", "role": "ASSISTANT", "content": wire.INTERRUPTED_MARKER}
    ),
    _event("contentEnd", {"contentId": "a1", "type": "AUDIO", "stopReason": "INTERRUPTED"}),
    _event("contentStart", {"contentId": "u1", "type": "TOOL", "role": "TOOL"}),
    _event(
        "toolUse",
        {"contentId": "u1", "toolName": "f", "toolUseId": "tu1", "content": '{"a": 1}'},
    ),
    _event("contentEnd", {"contentId": "u1", "type": "TOOL", "stopReason": "TOOL_USE"}),
    _event(
        "usageEvent",
        {
            "details": {
                "delta": {
                    "input": {"speechTokens": 1, "textTokens": 2},
                    "output": {"speechTokens": 3},
                },
                "total": {
                    "input": {"speechTokens": 1, "textTokens": 2},
                    "output": {"speechTokens": 3},
                },
            },
            "totalInputTokens": 3,
            "totalOutputTokens": 3,
            "totalTokens": 6,
        },
    ),
    _event("completionEnd", {"stopReason": "END_TURN"}),
]


def decode(translator: wire.OutputTranslator, chunk: bytes) -> list[BidiOutputEvent]:
    """What the model does with one chunk's bytes."""
    try:
        event = wire.decode_chunk(chunk)
    except ValueError:
        return [BidiErrorEvent(message="non-JSON chunk", code="malformed_event")]
    return wire.OutputTranslator.translate(translator, event)


@given(chunks=frame_sequences(VALID))
def test_decoder_survives_garbage_chunks(chunks: list[bytes]) -> None:
    """Random bytes, random JSON and mutated or truncated Nova events never crash the decoder."""
    translator = wire.OutputTranslator(output_rate=24000)
    for chunk in chunks:
        check_decoder(decode, translator, chunk)


def test_audio_that_is_not_base64_is_an_error_event() -> None:
    """An audioOutput whose content is not base64 is reported and skipped, not a crash."""
    translator = wire.OutputTranslator(output_rate=24000)
    for bad in ("abc", "\x80\x81"):
        (event,) = translator.translate(_event("audioOutput", {"contentId": "a1", "content": bad}))
        assert isinstance(event, BidiErrorEvent)
        assert event.code == "malformed_event"
        assert event.recoverable
