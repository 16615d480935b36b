"""The server frames every benchmark replays, built once per provider in its wire format.

One *response* is one second of assistant speech: 50 audio deltas of 20 ms at the
provider's output rate (24 kHz PCM16 mono = 960 bytes each), an assistant transcript
delta after every 5th audio delta, the provider's bookkeeping frames and one usage
report, exactly as the provider's fake server (and the real service) sends them.
A stream ends with a short *sentinel* response whose transcript delta is
:data:`SENTINEL`, so every client (floor, bidi, strands) knows when it has seen it all.

Audio payloads start with ``struct.pack("<dQ", sent_at, seq)`` in real-time mode, so a
client can measure the lateness of each audio event from its bytes alone.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from typing import Any

SENTINEL = "bench-end"
CHUNK_MS = 20
AUDIO_PER_RESPONSE = 50
TRANSCRIPT_EVERY = 5
OUTPUT_RATE = 24000
#: Input rates the bidi plugins send at (OpenAI GA is 24 kHz; Gemini and Nova take 16 kHz).
INPUT_RATE = {"openai": 24000, "gemini": 16000, "nova": 16000}
STAMP = struct.Struct("<dQ")


def pcm_chunk(rate: int = OUTPUT_RATE, ms: int = CHUNK_MS, seed: int = 0) -> bytes:
    """Return one chunk of non-silent, incompressible-looking PCM16 mono."""
    samples = rate * ms // 1000
    out = bytearray(2 * samples)
    x = 0x9E3779B1 ^ seed
    for i in range(samples):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        struct.pack_into("<h", out, 2 * i, (x >> 8) % 12000 - 6000)
    return bytes(out)


def stamped(pcm: bytes, sent_at: float, seq: int) -> bytes:
    """Return *pcm* with its first 16 bytes replaced by ``(sent_at, seq)``."""
    return STAMP.pack(sent_at, seq) + pcm[STAMP.size :]


def read_stamp(pcm: bytes) -> tuple[float, int]:
    """Return ``(sent_at, seq)`` of a stamped chunk."""
    sent_at, seq = STAMP.unpack_from(pcm)
    return sent_at, seq


def _words(n: int) -> list[str]:
    vocab = ["the", "quick", "robot", "listens", "before", "it", "speaks", "kindly", "to", "you"]
    return [vocab[i % len(vocab)] + " " for i in range(n)]


# ----------------------------------------------------------------------------- OpenAI


def _oa_usage() -> dict[str, Any]:
    return {
        "total_tokens": 180,
        "input_tokens": 120,
        "output_tokens": 60,
        "input_token_details": {
            "text_tokens": 20,
            "audio_tokens": 100,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 10, "audio_tokens": 50},
    }


def _oa_response(rid: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "realtime.response",
        "status": status,
        "status_details": None,
        "output": output,
        "conversation_id": "conv_bench",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": usage,
        "metadata": None,
    }


def openai_response(n: int, audio_chunks: int = AUDIO_PER_RESPONSE) -> list[dict[str, Any]]:
    """The GA server events of one assistant response (as dicts)."""
    rid, iid = f"resp_bench{n:05d}", f"item_bench{n:05d}"
    pcm = pcm_chunk()
    b64 = base64.b64encode(pcm).decode("ascii")
    where = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
    item = {
        "id": iid,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    words = _words(audio_chunks // TRANSCRIPT_EVERY) if audio_chunks > 1 else [SENTINEL]
    text = "".join(words)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _oa_response(rid, "in_progress", [], None)},
        {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item},
        {"type": "conversation.item.added", "previous_item_id": None, "item": item},
        {
            "type": "response.content_part.added",
            **where,
            "part": {"type": "audio", "transcript": ""},
        },
    ]
    w = 0
    for k in range(audio_chunks):
        events.append({"type": "response.output_audio.delta", **where, "delta": b64})
        if (k + 1) % TRANSCRIPT_EVERY == 0 or audio_chunks == 1:
            events.append(
                {"type": "response.output_audio_transcript.delta", **where, "delta": words[w]}
            )
            w += 1
    done_item = {
        **item,
        "status": "completed",
        "content": [{"type": "output_audio", "transcript": text}],
    }
    events += [
        {"type": "response.output_audio.done", **where},
        {"type": "response.output_audio_transcript.done", **where, "transcript": text},
        {
            "type": "response.content_part.done",
            **where,
            "part": {"type": "audio", "transcript": text},
        },
        {
            "type": "response.output_item.done",
            "response_id": rid,
            "output_index": 0,
            "item": done_item,
        },
        {"type": "conversation.item.done", "previous_item_id": None, "item": done_item},
        {
            "type": "response.done",
            "response": _oa_response(rid, "completed", [done_item], _oa_usage()),
        },
    ]
    return [{"event_id": f"event_{uuid.uuid4().hex[:20]}", **e} for e in events]


def openai_sentinel() -> list[dict[str, Any]]:
    """A tiny last response whose only transcript delta is :data:`SENTINEL`."""
    rid, iid = "resp_benchend", "item_benchend"
    where = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
    return [
        {
            "event_id": "event_benchend",
            "type": "response.output_audio_transcript.delta",
            **where,
            "delta": SENTINEL,
        },
    ]


def openai_stream(responses: int) -> list[str]:
    """The frames of *responses* responses plus the sentinel, as JSON text frames."""
    events = [e for n in range(responses) for e in openai_response(n)] + openai_sentinel()
    return [json.dumps(e) for e in events]


def openai_validate(responses: int = 1) -> int:
    """Validate the generated events against openai-python's GA server types."""
    from bidi_openai_realtime.testing._schema import validate_server_event

    events = [e for n in range(responses) for e in openai_response(n)] + openai_sentinel()
    for event in events:
        validate_server_event(event)
    return len(events)


def openai_audio_frame(pcm: bytes, n: int = 0) -> str:
    """One ``response.output_audio.delta`` frame carrying *pcm*."""
    return json.dumps(
        {
            "event_id": f"event_rt{n}",
            "type": "response.output_audio.delta",
            "response_id": "resp_rt",
            "item_id": "item_rt",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(pcm).decode("ascii"),
        }
    )


def openai_text_frame(text: str) -> str:
    """One assistant transcript delta (acks and the sentinel)."""
    return json.dumps(
        {
            "event_id": "event_ack",
            "type": "response.output_audio_transcript.delta",
            "response_id": "resp_ack",
            "item_id": "item_ack",
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }
    )


# ----------------------------------------------------------------------------- Gemini


def _gm_usage() -> dict[str, Any]:
    return {
        "promptTokenCount": 120,
        "responseTokenCount": 60,
        "totalTokenCount": 180,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 20},
            {"modality": "AUDIO", "tokenCount": 100},
        ],
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 60}],
    }


def gemini_audio_message(pcm: bytes, text: str | None = None) -> dict[str, Any]:
    """A ``serverContent`` message with one inline audio part (and a transcription)."""
    content: dict[str, Any] = {
        "modelTurn": {
            "role": "model",
            "parts": [
                {
                    "inlineData": {
                        "mimeType": "audio/pcm;rate=24000",
                        "data": base64.b64encode(pcm).decode("ascii"),
                    }
                }
            ],
        }
    }
    if text is not None:
        content["outputTranscription"] = {"text": text}
    return {"serverContent": content}


def gemini_text_message(text: str) -> dict[str, Any]:
    """An output transcription message (acks and the sentinel)."""
    return {"serverContent": {"outputTranscription": {"text": text}}}


def gemini_response(n: int, audio_chunks: int = AUDIO_PER_RESPONSE) -> list[dict[str, Any]]:
    """The messages of one answer, as the Gemini fake (and the service) sends them."""
    del n
    pcm = pcm_chunk()
    words = _words(audio_chunks // TRANSCRIPT_EVERY)
    out: list[dict[str, Any]] = []
    w = 0
    for k in range(audio_chunks):
        text = None
        if (k + 1) % TRANSCRIPT_EVERY == 0:
            text, w = words[w], w + 1
        message = gemini_audio_message(pcm, text)
        if k == audio_chunks - 1:
            message["serverContent"]["generationComplete"] = True
            message["usageMetadata"] = _gm_usage()
        out.append(message)
    out.append({"serverContent": {"turnComplete": True}})
    return out


def gemini_stream(responses: int) -> list[bytes]:
    """The frames of *responses* answers plus the sentinel, as binary JSON frames."""
    messages = [m for n in range(responses) for m in gemini_response(n)]
    # The sentinel closes its own turn, so no later round continues its response.
    messages += [gemini_text_message(SENTINEL), {"serverContent": {"turnComplete": True}}]
    return [json.dumps(m).encode() for m in messages]


# ------------------------------------------------------------------------------- Nova


_NOVA_IDS = {"sessionId": "sess-bench", "promptName": "prompt-bench"}


def _nv(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"event": {name: body}}


def _nv_content_start(cid: str, completion: str, kind: str, stage: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        **_NOVA_IDS,
        "completionId": completion,
        "contentId": cid,
        "type": kind,
        "role": "ASSISTANT",
    }
    if kind == "TEXT":
        body["textOutputConfiguration"] = {"mediaType": "text/plain"}
        body["additionalModelFields"] = json.dumps({"generationStage": stage})
    else:
        body["audioOutputConfiguration"] = {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": OUTPUT_RATE,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "encoding": "base64",
            "audioType": "SPEECH",
        }
    return _nv("contentStart", body)


def nova_text_block(completion: str, text: str, stage: str = "SPECULATIVE") -> list[dict[str, Any]]:
    """contentStart TEXT, textOutput, contentEnd (PARTIAL_TURN)."""
    cid = str(uuid.uuid4())
    ids = {**_NOVA_IDS, "completionId": completion, "contentId": cid}
    return [
        _nv_content_start(cid, completion, "TEXT", stage),
        _nv("textOutput", {**ids, "role": "ASSISTANT", "content": text}),
        _nv("contentEnd", {**ids, "type": "TEXT", "stopReason": "PARTIAL_TURN"}),
    ]


def nova_audio_event(completion: str, cid: str, pcm: bytes) -> dict[str, Any]:
    """One ``audioOutput`` event."""
    ids = {**_NOVA_IDS, "completionId": completion, "contentId": cid}
    return _nv("audioOutput", {**ids, "content": base64.b64encode(pcm).decode("ascii")})


def nova_audio_start(completion: str, cid: str) -> dict[str, Any]:
    """contentStart AUDIO."""
    return _nv_content_start(cid, completion, "AUDIO", None)


def nova_response(n: int, audio_chunks: int = AUDIO_PER_RESPONSE) -> list[dict[str, Any]]:
    """The events of one answer, in the Nova fake's (and the service's) order."""
    completion = f"completion-{n}"
    pcm = pcm_chunk()
    words = _words(audio_chunks // TRANSCRIPT_EVERY)
    totals = [0, 0]
    out = [_nv("completionStart", {**_NOVA_IDS, "completionId": completion})]
    for seg, word in enumerate(words):
        out += nova_text_block(completion, word)
        cid = str(uuid.uuid4())
        ids = {**_NOVA_IDS, "completionId": completion, "contentId": cid}
        out.append(nova_audio_start(completion, cid))
        out += [nova_audio_event(completion, cid, pcm) for _ in range(TRANSCRIPT_EVERY)]
        reason = "END_TURN" if seg == len(words) - 1 else "PARTIAL_TURN"
        out.append(_nv("contentEnd", {**ids, "type": "AUDIO", "stopReason": reason}))
        totals = [totals[0] + 10, totals[1] + 5]
        delta = {
            "input": {"speechTokens": 10, "textTokens": 0},
            "output": {"speechTokens": 5, "textTokens": 1},
        }
        out.append(
            _nv(
                "usageEvent",
                {
                    **_NOVA_IDS,
                    "completionId": completion,
                    "details": {
                        "delta": delta,
                        "total": {
                            "input": {"speechTokens": totals[0], "textTokens": 0},
                            "output": {"speechTokens": totals[1], "textTokens": seg + 1},
                        },
                    },
                    "totalInputTokens": totals[0],
                    "totalOutputTokens": totals[1] + seg + 1,
                    "totalTokens": totals[0] + totals[1] + seg + 1,
                },
            )
        )
    out.append(
        _nv("completionEnd", {**_NOVA_IDS, "completionId": completion, "stopReason": "END_TURN"})
    )
    return out


def nova_sentinel() -> list[dict[str, Any]]:
    """A speculative text block whose text is :data:`SENTINEL`, in a completion of its own."""
    end = _nv(
        "completionEnd", {**_NOVA_IDS, "completionId": "completion-end", "stopReason": "END_TURN"}
    )
    return [*nova_text_block("completion-end", SENTINEL), end]


def nova_payload(event: dict[str, Any]) -> bytes:
    """The ``chunk`` payload of one Nova event: ``{"bytes": <base64 JSON>}``."""
    inner = json.dumps(event, separators=(",", ":")).encode()
    return json.dumps({"bytes": base64.b64encode(inner).decode("ascii")}).encode()


def nova_stream(responses: int) -> list[dict[str, Any]]:
    """The events of *responses* answers plus the sentinel."""
    return [e for n in range(responses) for e in nova_response(n)] + nova_sentinel()
