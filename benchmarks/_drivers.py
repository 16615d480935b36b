"""One driver per (provider, implementation): the floor, bidi and strands-agents.

Every driver connects to a benchmark server (:mod:`_server`), sends text and audio the
way its implementation does, and reads events until one carries a given text. The
floor drivers do only what the wire needs: for OpenAI ``websockets`` + ``json`` +
``base64``; for Gemini the bare ``google-genai`` live session; for Nova the bare
``aws_sdk_bedrock_runtime`` bidirectional stream + ``json`` + ``base64``.

Only :meth:`Driver.wait_text` sits on the measured receive path; its per-event work
is one type check and, for events that carry text, a string search.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

ACK = re.compile(r"bench-(?:ack|done):[0-9.:]+")
MODEL_IDS = {
    "openai": "gpt-realtime",
    "gemini": "gemini-2.5-flash-native-audio-preview-09-2025",
    "nova": "amazon.nova-sonic-v1:0",
}
NOVA_INFERENCE = {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
#: Clients shared by the sessions of one process (floor drivers with ``info["shared"]``).
_SHARED: dict[tuple[str, int], Any] = {}


def _shared(key: tuple[str, int], build: Callable[[], Any]) -> Any:
    """One object per process for *key* (built by *build* the first time)."""
    if key not in _SHARED:
        _SHARED[key] = build()
    return _SHARED[key]


def _ssl_context(ca_path: str) -> Any:
    """One TLS context trusting the benchmark server for every session of the process."""
    import ssl

    return _shared(("ssl", 0), lambda: ssl.create_default_context(cafile=ca_path))


def _boto_session() -> Any:
    """One boto3 session for every Nova session of the process, as a server would keep."""
    import boto3

    return _shared(
        ("boto3", 0),
        lambda: boto3.Session(
            aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench", region_name="us-east-1"
        ),
    )


class Driver:
    """The common interface; ``on_audio`` (if set) is called with every output PCM chunk."""

    rate: int = 24000
    on_audio: Callable[[bytes], None] | None = None

    async def open(self) -> None:
        raise NotImplementedError

    async def send_text(self, text: str) -> None:
        raise NotImplementedError

    async def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        """Read events until a text event contains *needle*; return (text, events read)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def _match(needle: str | re.Pattern[str], text: str) -> str | None:
    if isinstance(needle, str):
        return text if needle in text else None
    found = needle.search(text)
    return found.group(0) if found else None


# =============================================================================== bidi


class BidiDriver(Driver):
    """Any bidi plugin through ``bidi_core.get_model`` (the public API)."""

    def __init__(self, provider: str, info: dict[str, Any]) -> None:
        self.provider = provider
        self.info = info
        self.model: Any = None
        self.events: Any = None

    def _kwargs(self) -> dict[str, Any]:
        info = self.info
        if self.provider == "openai":
            return {
                "client_config": {"api_key": "k", "base_url": f"http://127.0.0.1:{info['port']}/v1"}
            }
        if self.provider == "gemini":
            ctx = _ssl_context(info["ca_path"])
            return {
                "client_config": {
                    "api_key": "k",
                    "http_options": {
                        "base_url": f"https://127.0.0.1:{info['port']}",
                        "api_version": "v1beta",
                        "async_client_args": {"ssl": ctx},
                    },
                },
                "provider_config": {"resumption": False, "connection_limit_s": None},
            }

        session = _boto_session()
        return {
            "client_config": {
                "endpoint_uri": f"https://127.0.0.1:{info['port']}",
                "ca_bundle": info["ca_path"],
                "boto_session": session,
            },
            "provider_config": {"connection_limit_s": None},
        }

    async def open(self) -> None:
        from bidi_core import get_model

        name = {"openai": "openai_realtime", "gemini": "gemini_live", "nova": "nova_sonic"}
        from bidi_core import (
            BidiAudioInputEvent,
            BidiAudioStreamEvent,
            BidiTextInputEvent,
            BidiTranscriptStreamEvent,
        )

        self._audio_in = BidiAudioInputEvent
        self._text_in = BidiTextInputEvent
        self._audio_out = BidiAudioStreamEvent
        self._transcript = BidiTranscriptStreamEvent
        self.model = get_model(name[self.provider], **self._kwargs())
        self.rate = self.model.input_sample_rate()
        await self.model.start(system_prompt="You are a benchmark.")
        self.events = self.model.receive().__aiter__()
        first = await self.events.__anext__()
        assert type(first).__name__ == "BidiConnectionStartEvent", first

    async def send_text(self, text: str) -> None:
        await self.model.send(self._text_in(text=text))

    async def send_audio(self, pcm: bytes) -> None:
        await self.model.send(self._audio_in(audio=pcm, sample_rate=self.rate))

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        BidiAudioStreamEvent = self._audio_out  # noqa: N806
        BidiTranscriptStreamEvent = self._transcript  # noqa: N806
        events = self.events
        on_audio = self.on_audio
        n = 0
        async for event in events:
            n += 1
            if type(event) is BidiTranscriptStreamEvent and not event.is_final:
                found = _match(needle, event.text)
                if found is not None:
                    return found, n
            elif on_audio is not None and type(event) is BidiAudioStreamEvent:
                on_audio(event.audio)
        msg = "receive() ended"
        raise RuntimeError(msg)

    async def close(self) -> None:
        await self.model.stop()


# ============================================================================== floor


class OpenAIFloor(Driver):
    """websockets + json + base64: the handshake, then decode every frame."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.url = f"ws://127.0.0.1:{info['port']}/v1/realtime?model=gpt-realtime"
        self.ws: Any = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            additional_headers={"Authorization": "Bearer k"},
            max_size=None,
            compression=None,
        )
        assert json.loads(await self.ws.recv())["type"] == "session.created"
        session = {"type": "realtime", "instructions": "You are a benchmark."}
        await self.ws.send(json.dumps({"type": "session.update", "session": session}))
        assert json.loads(await self.ws.recv())["type"] == "session.updated"

    async def send_text(self, text: str) -> None:
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        await self.ws.send(json.dumps({"type": "conversation.item.create", "item": item}))

    async def send_audio(self, pcm: bytes) -> None:
        audio = base64.b64encode(pcm).decode("ascii")
        await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        ws = self.ws
        on_audio = self.on_audio
        n = 0
        while True:
            event = json.loads(await ws.recv())
            n += 1
            kind = event["type"]
            if kind == "response.output_audio.delta":
                pcm = base64.b64decode(event["delta"])
                if on_audio is not None:
                    on_audio(pcm)
            elif kind == "response.output_audio_transcript.delta":
                found = _match(needle, event["delta"])
                if found is not None:
                    return found, n

    async def close(self) -> None:
        await self.ws.close()


class GeminiFloor(Driver):
    """The bare google-genai live session (``client.aio.live.connect``).

    With ``info["shared"]`` every session of the process uses one ``genai.Client``
    (the memory row's floor).
    """

    rate = 16000

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.shared = bool(info.get("shared"))
        self.client: Any = None
        self.cm: Any = None
        self.session: Any = None
        self.stream: Any = None

    async def open(self) -> None:
        import ssl

        from google import genai
        from google.genai import types

        key = ("gemini", self.info["port"])
        self.client = _SHARED.get(key) if self.shared else None
        if self.client is None:
            ctx = ssl.create_default_context(cafile=self.info["ca_path"])
            self.client = genai.Client(
                api_key="k",
                http_options=types.HttpOptions(
                    base_url=f"https://127.0.0.1:{self.info['port']}",
                    api_version="v1beta",
                    async_client_args={"ssl": ctx},
                ),
            )
            if self.shared:
                _SHARED[key] = self.client
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO], system_instruction="You are a benchmark."
        )
        self.cm = self.client.aio.live.connect(model=MODEL_IDS["gemini"], config=config)
        self.session = await self.cm.__aenter__()

    async def send_text(self, text: str) -> None:
        await self.session.send_realtime_input(text=text)

    async def send_audio(self, pcm: bytes) -> None:
        from google.genai import types

        await self.session.send_realtime_input(
            audio=types.Blob(data=pcm, mime_type=f"audio/pcm;rate={self.rate}")
        )

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        on_audio = self.on_audio
        n = 0
        while True:  # receive() ends at every turnComplete
            async for message in self.session.receive():
                n += 1
                content = message.server_content
                if content is None:
                    continue
                if on_audio is not None and content.model_turn is not None:
                    for part in content.model_turn.parts or ():
                        if part.inline_data is not None and part.inline_data.data:
                            on_audio(part.inline_data.data)
                transcript = content.output_transcription
                if transcript is not None and transcript.text:
                    found = _match(needle, transcript.text)
                    if found is not None:
                        return found, n

    async def close(self) -> None:
        await self.cm.__aexit__(None, None, None)
        if not self.shared:
            await self.client.aio.aclose()


def trusting_crt(ca_path: str, base: Any = None) -> Any:
    """An awscrt transport (``base`` subclass) that trusts the benchmark server's CA."""
    from awscrt import io as crt_io
    from smithy_http.aio.crt import AWSCRTHTTPClient

    parent = base or AWSCRTHTTPClient

    class Trusting(parent):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            options = crt_io.TlsContextOptions()
            options.override_default_trust_store_from_path(ca_filepath=ca_path)
            self._tls_ctx = crt_io.ClientTlsContext(options)

        def __deepcopy__(self, memo: Any) -> Any:
            return self

    return Trusting


class NovaFloor(Driver):
    """The bare Bedrock SDK stream: send chunks, ``output.receive()``, json, base64.

    With ``info["shared"]`` every session of the process uses one SDK client (one
    HTTP/2 connection carrying every stream: the memory row's floor).
    """

    rate = 16000

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.shared = bool(info.get("shared"))
        self.client: Any = None
        self.stream: Any = None
        self.output: Any = None
        self.prompt = str(uuid.uuid4())
        self.audio_content: str | None = None
        #: contentIds of FINAL text blocks (the whole answer, not a transcript delta).
        self.final_text: set[str] = set()

    async def open(self) -> None:
        from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
        from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
        from aws_sdk_bedrock_runtime.models import (
            InvokeModelWithBidirectionalStreamOperationInput,
        )

        key = ("nova", self.info["port"])
        self.client = _SHARED.get(key) if self.shared else None
        if self.client is None:
            transport = trusting_crt(self.info["ca_path"])()
            config = await AsyncBedrockRuntimeConfig.resolve(
                endpoint_uri=f"https://127.0.0.1:{self.info['port']}",
                region="us-east-1",
                aws_access_key_id="AKIDBENCH",
                aws_secret_access_key="bench",
                transport=transport,
            )
            self.client = AsyncBedrockRuntimeClient(config=config)
            if self.shared:
                _SHARED[key] = self.client
        self.stream = await self.client.invoke_model_with_bidirectional_stream(
            InvokeModelWithBidirectionalStreamOperationInput(model_id=MODEL_IDS["nova"])
        )
        await self._send({"sessionStart": {"inferenceConfiguration": NOVA_INFERENCE}})
        await self._send(
            {
                "promptStart": {
                    "promptName": self.prompt,
                    "textOutputConfiguration": {"mediaType": "text/plain"},
                    "audioOutputConfiguration": {
                        "mediaType": "audio/lpcm",
                        "sampleRateHertz": 24000,
                        "sampleSizeBits": 16,
                        "channelCount": 1,
                        "voiceId": "matthew",
                        "encoding": "base64",
                        "audioType": "SPEECH",
                    },
                }
            }
        )
        _, self.output = await self.stream.await_output()

    async def _send(self, event: dict[str, Any]) -> None:
        from aws_sdk_bedrock_runtime.models import (
            BidirectionalInputPayloadPart,
            InvokeModelWithBidirectionalStreamInputChunk,
        )

        data = json.dumps({"event": event}).encode()
        await self.stream.input_stream.send(
            InvokeModelWithBidirectionalStreamInputChunk(
                value=BidirectionalInputPayloadPart(bytes_=data)
            )
        )

    async def send_text(self, text: str) -> None:
        name = str(uuid.uuid4())
        ids = {"promptName": self.prompt, "contentName": name}
        await self._send(
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
        await self._send({"textInput": {**ids, "content": text}})
        await self._send({"contentEnd": ids})

    async def send_audio(self, pcm: bytes) -> None:
        if self.audio_content is None:
            self.audio_content = str(uuid.uuid4())
            await self._send(
                {
                    "contentStart": {
                        "promptName": self.prompt,
                        "contentName": self.audio_content,
                        "type": "AUDIO",
                        "role": "USER",
                        "interactive": True,
                        "audioInputConfiguration": {
                            "mediaType": "audio/lpcm",
                            "sampleRateHertz": self.rate,
                            "sampleSizeBits": 16,
                            "channelCount": 1,
                            "audioType": "SPEECH",
                            "encoding": "base64",
                        },
                    }
                }
            )
        content = base64.b64encode(pcm).decode("ascii")
        await self._send(
            {
                "audioInput": {
                    "promptName": self.prompt,
                    "contentName": self.audio_content,
                    "content": content,
                }
            }
        )

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        output = self.output
        on_audio = self.on_audio
        final = self.final_text
        n = 0
        while True:
            chunk = await output.receive()
            if chunk is None:
                msg = "stream ended"
                raise RuntimeError(msg)
            n += 1
            event = json.loads(chunk.value.bytes_)["event"]
            audio = event.get("audioOutput")
            if audio is not None:
                pcm = base64.b64decode(audio["content"])
                if on_audio is not None:
                    on_audio(pcm)
                continue
            text = event.get("textOutput")
            if text is not None:
                if text["contentId"] in final:
                    continue  # the whole answer again, not a delta
                found = _match(needle, text["content"])
                if found is not None:
                    return found, n
                continue
            start = event.get("contentStart")
            if start is not None and '"FINAL"' in start.get("additionalModelFields", ""):
                final.add(start["contentId"])

    async def close(self) -> None:
        if self.audio_content is not None:
            await self._send(
                {"contentEnd": {"promptName": self.prompt, "contentName": self.audio_content}}
            )
        await self._send({"promptEnd": {"promptName": self.prompt}})
        await self._send({"sessionEnd": {}})
        await self.stream.input_stream.close()
        await self.stream.close()
        if not self.shared and hasattr(self.client, "close"):
            await self.client.close()


# ============================================================================ strands


class StrandsDriver(Driver):
    """strands-agents' bidi model of the provider (``strands.bidi.models``).

    strands hard-codes the production endpoints, so the benchmark points them at the
    loopback server: the OpenAI URL constant, the Gemini client's ``http_options``
    (a documented ``client_args`` pass-through) and, for Nova, the endpoint passed to
    ``AsyncBedrockRuntimeConfig.resolve`` plus a CA-trusting subclass of strands' own
    awscrt transport. Nothing on the event path is touched.
    """

    def __init__(self, provider: str, info: dict[str, Any]) -> None:
        self.provider = provider
        self.info = info
        self.model: Any = None
        self.events: Any = None

    def _build(self) -> Any:
        info = self.info
        if self.provider == "openai":
            from strands.bidi.models.openai import realtime

            realtime.OPENAI_REALTIME_URL = f"ws://127.0.0.1:{info['port']}/v1/realtime"
            return realtime.OpenAIRealtimeModel(
                model_id=MODEL_IDS["openai"], api_key="k", transcription_model_id=None
            )
        if self.provider == "gemini":
            from strands.bidi.models.google import GoogleGeminiLiveModel

            ctx = _ssl_context(info["ca_path"])
            self.rate = 16000
            return GoogleGeminiLiveModel(
                model_id=MODEL_IDS["gemini"],
                client_args={
                    "api_key": "k",
                    "http_options": {
                        "base_url": f"https://127.0.0.1:{info['port']}",
                        "api_version": "v1beta",
                        "async_client_args": {"ssl": ctx},
                    },
                },
            )
        from strands.bidi.models import bedrock

        self.rate = 16000
        if not getattr(bedrock, "_bench_patched", False):
            bedrock._BedrockAWSCRTHTTPClient = trusting_crt(  # type: ignore[attr-defined]
                info["ca_path"], bedrock._BedrockAWSCRTHTTPClient
            )
            resolve = bedrock.AsyncBedrockRuntimeConfig.resolve
            endpoint = f"https://127.0.0.1:{info['port']}"

            async def patched(*args: Any, **kwargs: Any) -> Any:
                kwargs["endpoint_uri"] = endpoint
                return await resolve(*args, **kwargs)

            bedrock.AsyncBedrockRuntimeConfig.resolve = staticmethod(patched)  # type: ignore[method-assign]
            bedrock._bench_patched = True  # type: ignore[attr-defined]
        session = _boto_session()
        return bedrock.BedrockNovaSonicModel(
            model_id=MODEL_IDS["nova"],
            boto_session=session,
            params={"inferenceConfiguration": NOVA_INFERENCE},
        )

    async def open(self) -> None:
        from strands.bidi.types import BidiMessage
        from strands.bidi.types.media import AudioDelta
        from strands.types.content import TextBlock

        self._message, self._text_block, self._audio_delta = BidiMessage, TextBlock, AudioDelta
        self.model = self._build()
        await self.model.start(system_prompt="You are a benchmark.")
        self.events = self.model.receive().__aiter__()
        first = await self.events.__anext__()
        assert first["type"] == "bidi_connection_start", first

    async def send_text(self, text: str) -> None:
        await self.model.send(self._message(content=[self._text_block(text)]))

    async def send_audio(self, pcm: bytes) -> None:
        await self.model.send(self._audio_delta(format="pcm", source={"bytes": pcm}))

    async def wait_text(self, needle: str | re.Pattern[str]) -> tuple[str, int]:
        on_audio = self.on_audio
        n = 0
        async for event in self.events:
            n += 1
            kind = event["type"]
            if kind in ("bidi_transcript_delta", "bidi_text_delta"):
                found = _match(needle, event["delta"])
                if found is not None:
                    return found, n
            elif on_audio is not None and kind == "bidi_audio_delta":
                on_audio(base64.b64decode(event["audio"]))
        msg = "receive() ended"
        raise RuntimeError(msg)

    async def close(self) -> None:
        await self.model.stop()


def make_driver(provider: str, impl: str, info: dict[str, Any]) -> Driver:
    """Return the driver of *impl* (``floor``, ``bidi``, ``strands``) for *provider*."""
    if impl == "bidi":
        return BidiDriver(provider, info)
    if impl == "strands":
        return StrandsDriver(provider, info)
    floors: dict[str, Any] = {"openai": OpenAIFloor, "gemini": GeminiFloor, "nova": NovaFloor}
    return floors[provider](info)  # type: ignore[no-any-return]
