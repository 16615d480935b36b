"""Record the frames each plugin's fake server sends, to replay them in the benchmarks.

The benchmark servers (:mod:`_server`) must send what the service sends, byte for
byte, and there must be one definition of those frames: the plugins' fakes
(``bidi_<name>.testing``), which the plugin test suites check against the providers'
own schemas. So nothing here builds a provider frame: :func:`record` starts the
plugin's fake with a :class:`~bidi_core.testing.ScriptedAssistant` that answers at
once, asks it for answers over a bare client (websockets for OpenAI and Gemini, the
bare Bedrock SDK for Nova) and keeps every server frame exactly as it arrived.

Answers are the scripted assistant's (``"You said: <text>."``: one transcript delta
per word, 20 ms audio deltas at 24 kHz, 960 bytes of PCM each, then the provider's
bookkeeping and usage frames). A burst ends with the answer to :data:`_frames.SENTINEL`:
a client stops reading at the transcript delta that carries it, and reads the rest of
that answer at the start of the next burst, so every measured round reads one whole
burst.

For the real-time (scale) row the servers send stamped audio and short texts: those
frames are recorded frames with only the audio payload or the transcript text
replaced (:meth:`Recording.audio_frame`, :meth:`Recording.text_frames`); the
recording checks that re-encoding a recorded frame gives back its exact bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import _frames as fr
import attrs

#: What the benchmark asks the fake; its answer ("You said: ... N.") is 1.4 s of speech.
QUESTION = "ready for the benchmark"
MODEL_IDS = {
    "openai": "gpt-realtime",
    "gemini": "gemini-2.5-flash-native-audio-preview-09-2025",
    "nova": "amazon.nova-sonic-v1:0",
}


@attrs.frozen(kw_only=True)
class Recording:
    """The recorded frames of one provider.

    Attributes:
        provider: ``openai``, ``gemini`` or ``nova``.
        handshake: Frames the fake sent while the session opened (OpenAI:
            ``session.created``, ``session.updated``; Gemini: ``setupComplete``).
        answers: The frames of each recorded answer, in order (each answer's ids
            are its own, as the fake numbered them).
        sentinel: The frames of the answer whose transcript carries :data:`_frames.SENTINEL`.
        audio_template: One recorded audio frame (the payload of the real-time row).
        text_template: The recorded frames of one assistant transcript delta (Nova:
            its text block, ``contentStart``, ``textOutput``, ``contentEnd``).
        audio_prologue: Recorded frames that open an audio block (Nova: its
            ``contentStart``; none for the others).
    """

    provider: str
    handshake: tuple[Any, ...]
    answers: tuple[tuple[Any, ...], ...]
    sentinel: tuple[Any, ...]
    audio_template: Any
    text_template: tuple[Any, ...]
    audio_prologue: tuple[Any, ...] = ()

    def burst(self, answers: int) -> list[Any]:
        """*answers* recorded answers (cycling through them) plus the sentinel answer."""
        out = [f for i in range(answers) for f in self.answers[i % len(self.answers)]]
        return out + list(self.sentinel)

    def audio_frame(self, pcm: bytes) -> Any:
        """The recorded audio frame with *pcm* as its payload."""
        return _replace(self.provider, self.audio_template, audio=pcm)

    def text_frames(self, text: str) -> list[Any]:
        """The recorded transcript frame(s) with *text* as the transcript delta."""
        return [
            _replace(self.provider, f, text=text) if i == len(self.text_template) // 2 else f
            for i, f in enumerate(self.text_template)
        ]


# ------------------------------------------------------------------- re-encoding
#
# Each fake encodes with json.dumps (OpenAI: text frames; Gemini: the same, sent as
# bytes; Nova: compact inner JSON, base64 in a {"bytes": ...} payload, in an event
# stream message). Decoding a recorded frame and encoding it the same way gives back
# its exact bytes (checked by _check_roundtrip), so a frame with one value replaced
# is a frame the fake could have sent.


def _decode(frame: Any) -> dict[str, Any]:
    return json.loads(frame)  # type: ignore[no-any-return]


def _encode(provider: str, data: dict[str, Any]) -> Any:
    if provider == "openai":
        return json.dumps(data)
    if provider == "gemini":
        return json.dumps(data).encode()
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def _check_roundtrip(provider: str, frame: Any) -> None:
    if _encode(provider, _decode(frame)) != frame:
        msg = (
            f"re-encoding a recorded {provider} frame does not give back its bytes: {frame!r:.200}"
        )
        raise AssertionError(msg)


def _replace(
    provider: str, frame: Any, *, audio: bytes | None = None, text: str | None = None
) -> Any:
    data = _decode(frame)
    b64 = None if audio is None else base64.b64encode(audio).decode("ascii")
    if provider == "openai":
        data["delta"] = b64 if b64 is not None else text
    elif provider == "gemini":
        content = data["serverContent"]
        if b64 is not None:
            content["modelTurn"]["parts"][0]["inlineData"]["data"] = b64
        else:
            content.pop("modelTurn", None)  # a transcription alone, as the fake sends it
            content["outputTranscription"]["text"] = text
    else:
        body = data["event"]["audioOutput" if b64 is not None else "textOutput"]
        body["content"] = b64 if b64 is not None else text
    return _encode(provider, data)


def nova_inner(frame: bytes) -> dict[str, Any]:
    """The Nova event of a recorded inner frame."""
    return json.loads(frame)["event"]  # type: ignore[no-any-return]


# --------------------------------------------------------------------- recording


def _assistant() -> Any:
    from bidi_core.testing import AssistantConfig

    return AssistantConfig(seed=18, chunk_ms=fr.CHUNK_MS, output_sample_rate=fr.OUTPUT_RATE)


def _with_sentinel(provider: str, frames: list[Any]) -> list[Any]:
    if not any(fr.SENTINEL.encode() in (f if isinstance(f, bytes) else f.encode()) for f in frames):
        msg = f"the {provider} fake's answer never carried {fr.SENTINEL!r}"
        raise AssertionError(msg)
    return frames


async def record_openai(answers: int) -> Recording:
    from websockets.asyncio.client import connect

    from bidi_openai_realtime.testing import serve

    async with serve(assistant_config=_assistant()) as fake:
        url = fake.base_url.replace("http", "ws", 1) + f"/realtime?model={MODEL_IDS['openai']}"
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            created = await ws.recv()
            session = {"type": "realtime", "instructions": "You are a benchmark."}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            updated = await ws.recv()

            async def ask(text: str) -> list[str]:
                item = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
                await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
                await ws.send(json.dumps({"type": "response.create"}))
                frames: list[str] = []
                while True:
                    frame = await ws.recv()
                    assert isinstance(frame, str)
                    frames.append(frame)
                    if json.loads(frame)["type"] == "response.done":
                        return frames

            recorded = [await ask(f"{QUESTION} {n}") for n in range(answers)]
            last = _with_sentinel("openai", await ask(fr.SENTINEL))
        assert not fake.invalid, fake.invalid
        assert not fake.invalid_sent, fake.invalid_sent
    kinds = [(json.loads(f)["type"], f) for a in recorded for f in a]
    audio = next(f for k, f in kinds if k == "response.output_audio.delta")
    text = next(f for k, f in kinds if k == "response.output_audio_transcript.delta")
    for frame in (created, updated, audio, text):
        _check_roundtrip("openai", frame)
    return Recording(
        provider="openai",
        handshake=(created, updated),
        answers=tuple(tuple(a) for a in recorded),
        sentinel=tuple(last),
        audio_template=audio,
        text_template=(text,),
    )


async def record_gemini(answers: int) -> Recording:
    from websockets.asyncio.client import connect

    from bidi_gemini_live.testing import serve

    async with serve(assistant_config=_assistant()) as fake:
        config = fake.model_kwargs["client_config"]
        base = config["http_options"]["base_url"].replace("https", "wss", 1)
        url = f"{base}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        ssl = config["http_options"]["async_client_args"]["ssl"]
        headers = {"x-goog-api-key": config["api_key"]}
        async with connect(url, additional_headers=headers, ssl=ssl, max_size=None) as ws:
            setup = {
                "model": f"models/{MODEL_IDS['gemini']}",
                "generationConfig": {"responseModalities": ["AUDIO"]},
                "systemInstruction": {"parts": [{"text": "You are a benchmark."}]},
                "outputAudioTranscription": {},
            }
            await ws.send(json.dumps({"setup": setup}))
            complete = await ws.recv()

            async def ask(text: str) -> list[bytes]:
                await ws.send(json.dumps({"realtimeInput": {"text": text}}))
                frames: list[bytes] = []
                while True:
                    frame = await ws.recv()
                    assert isinstance(frame, bytes)
                    frames.append(frame)
                    if json.loads(frame).get("serverContent", {}).get("turnComplete"):
                        return frames

            recorded = [await ask(f"{QUESTION} {n}") for n in range(answers)]
            last = _with_sentinel("gemini", await ask(fr.SENTINEL))
    messages = [(json.loads(f).get("serverContent", {}), f) for a in recorded for f in a]
    audio = next(f for c, f in messages if "modelTurn" in c and "outputTranscription" not in c)
    text = next(f for c, f in messages if "outputTranscription" in c)
    for frame in (complete, audio, text):
        _check_roundtrip("gemini", frame)
    return Recording(
        provider="gemini",
        handshake=(complete,),
        answers=tuple(tuple(a) for a in recorded),
        sentinel=tuple(last),
        audio_template=audio,
        text_template=(text,),
    )


async def record_nova(answers: int) -> Recording:
    """Nova frames are the inner event JSON; :mod:`_server` wraps them like the fake."""
    from _drivers import NOVA_INFERENCE, trusting_crt
    from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
    from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
    from aws_sdk_bedrock_runtime.models import (
        BidirectionalInputPayloadPart,
        InvokeModelWithBidirectionalStreamInputChunk,
        InvokeModelWithBidirectionalStreamOperationInput,
    )

    from bidi_nova_sonic.testing import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, serve

    async with serve(assistant_config=_assistant()) as fake:
        config = await AsyncBedrockRuntimeConfig.resolve(
            endpoint_uri=fake.endpoint_uri,
            region="us-east-1",
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            transport=trusting_crt(fake.ca_path)(),
        )
        client = AsyncBedrockRuntimeClient(config=config)
        stream = await client.invoke_model_with_bidirectional_stream(
            InvokeModelWithBidirectionalStreamOperationInput(model_id=MODEL_IDS["nova"])
        )
        prompt = str(uuid.uuid4())

        async def send(event: dict[str, Any]) -> None:
            data = json.dumps({"event": event}).encode()
            await stream.input_stream.send(
                InvokeModelWithBidirectionalStreamInputChunk(
                    value=BidirectionalInputPayloadPart(bytes_=data)
                )
            )

        await send({"sessionStart": {"inferenceConfiguration": NOVA_INFERENCE}})
        await send(
            {
                "promptStart": {
                    "promptName": prompt,
                    "textOutputConfiguration": {"mediaType": "text/plain"},
                    "audioOutputConfiguration": {
                        "mediaType": "audio/lpcm",
                        "sampleRateHertz": fr.OUTPUT_RATE,
                        "sampleSizeBits": 16,
                        "channelCount": 1,
                        "voiceId": "matthew",
                        "encoding": "base64",
                        "audioType": "SPEECH",
                    },
                }
            }
        )
        _, output = await stream.await_output()

        async def ask(text: str) -> list[bytes]:
            ids = {"promptName": prompt, "contentName": str(uuid.uuid4())}
            await send(
                {
                    "contentStart": {
                        **ids,
                        "type": "TEXT",
                        "role": "USER",
                        "interactive": True,
                        "textInputConfiguration": {"mediaType": "text/plain"},
                    }
                }
            )
            await send({"textInput": {**ids, "content": text}})
            await send({"contentEnd": ids})
            frames: list[bytes] = []
            while True:
                chunk = await output.receive()
                assert chunk is not None, "the Nova fake ended the stream"
                frames.append(chunk.value.bytes_)
                if "completionEnd" in nova_inner(frames[-1]):
                    return frames

        try:
            recorded = [await ask(f"{QUESTION} {n}") for n in range(answers)]
            last = _with_sentinel("nova", await ask(fr.SENTINEL))
            await send({"promptEnd": {"promptName": prompt}})
            await send({"sessionEnd": {}})
            await stream.input_stream.close()
        finally:
            await stream.close()
        assert not fake.protocol_errors, fake.protocol_errors
    frames = recorded[0]
    events = [nova_inner(f) for f in frames]
    audio = next(f for e, f in zip(events, frames, strict=True) if "audioOutput" in e)
    prologue = next(
        f
        for e, f in zip(events, frames, strict=True)
        if e.get("contentStart", {}).get("type") == "AUDIO"
    )
    # The first text block: contentStart (TEXT), textOutput, contentEnd.
    start = next(i for i, e in enumerate(events) if e.get("contentStart", {}).get("type") == "TEXT")
    block = tuple(frames[start : start + 3])
    assert [next(iter(nova_inner(f))) for f in block] == [
        "contentStart",
        "textOutput",
        "contentEnd",
    ]
    for frame in (audio, prologue, *block):
        _check_roundtrip("nova", frame)
    return Recording(
        provider="nova",
        handshake=(),
        answers=tuple(tuple(a) for a in recorded),
        sentinel=tuple(last),
        audio_template=audio,
        text_template=block,
        audio_prologue=(prologue,),
    )


def ignore_crt_body_writer(loop: asyncio.AbstractEventLoop) -> None:
    """Drop awscrt's harmless body-writer failure after the server ended a stream.

    The bare SDK leaves that task's exception unretrieved (the bidi plugin handles
    it); it is not a benchmark result.
    """
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "HTTP-stream has completed" in repr(context.get("exception")):
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


RECORDERS = {"openai": record_openai, "gemini": record_gemini, "nova": record_nova}


def record(provider: str, answers: int = 20) -> Recording:
    """Record *answers* answers (plus the sentinel answer) from *provider*'s fake."""

    async def run() -> Recording:
        ignore_crt_body_writer(asyncio.get_running_loop())
        return await RECORDERS[provider](answers)

    return asyncio.run(run())


def burst_frames(info: dict[str, Any], answers: int) -> int:
    """Frames in a burst of *answers* answers, from a benchmark server's info line."""
    sizes = info["answer_frames"]
    return sum(sizes[i % len(sizes)] for i in range(answers)) + info["sentinel_frames"]
