"""Nova-specific behaviour of NovaSonicModel, over the real SDK stack and the fake endpoint."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Reader, body, names, send_speech

from bidi_core import (
    BidiConnectionError,
    BidiModelTimeoutError,
    ConfigError,
    ProviderProtocolError,
    UnsupportedInputError,
)
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.testing import transcribe
from bidi_core.testing.speech import normalize, speak
from bidi_nova_sonic import NovaSonicModel
from bidi_nova_sonic.testing import FAKE_SECRET_KEY, FakeNovaServer, serve

Factory = Callable[..., NovaSonicModel]

TOOL = {
    "name": "lookup",
    "description": "Look something up.",
    "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


async def test_event_order_and_bookkeeping_on_the_wire(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """start/send/stop put Nova's documented event sequence on the wire, names consistent."""
    model = make_model()
    history = [
        {"role": "user", "content": [{"text": "my name is Ada"}]},
        {"role": "assistant", "content": [{"text": "Hello Ada."}]},
    ]
    await model.start(system_prompt="Be terse.", tools=[TOOL], messages=history)  # type: ignore[list-item]
    reader = Reader(model)
    await send_speech(model, "hi", tail_ms=100)
    await reader.turn("hello order")
    await model.stop()
    await reader.aclose()
    assert fake.protocol_errors == []
    events = fake.requests[0].events
    seq = names(events)
    assert seq[:2] == ["sessionStart", "promptStart"]
    # system prompt, then two history messages, each start/input/end, non-interactive
    assert seq[2:11] == ["contentStart", "textInput", "contentEnd"] * 3
    roles = [body(e)["role"] for e in events[2:11:3]]
    assert roles == ["SYSTEM", "USER", "ASSISTANT"]
    assert all(body(e)["interactive"] is False for e in events[2:11:3])
    prompt = body(events[1])["promptName"]
    assert all(body(e).get("promptName", prompt) == prompt for e in events[1:])
    audio_starts = [
        e for e in events if names([e]) == ["contentStart"] and body(e)["type"] == "AUDIO"
    ]
    assert len(audio_starts) == 1, "all audio goes into one open AUDIO content"
    audio_name = body(audio_starts[0])["contentName"]
    assert seq[-3:] == ["contentEnd", "promptEnd", "sessionEnd"]
    assert body(events[-3])["contentName"] == audio_name
    assert fake.session_ends == 1
    # Every event and the final empty frame continued the SigV4 chain.
    assert fake.requests[0].signature_valid
    assert fake.requests[0].signed_frames == len(events) + 1
    tool_names = [t["toolSpec"]["name"] for t in body(events[1])["toolConfiguration"]["tools"]]
    assert tool_names == ["lookup"]


async def test_tool_round_trip_sends_tool_content(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """A tool result goes back as TOOL content naming the toolUseId, with a JSON string."""
    model = make_model()
    await model.start(tools=[TOOL])  # type: ignore[list-item]
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text='lookup {"q": "tulips"}'))
    seen = await reader.until(lambda e: isinstance(e, BidiResponseCompleteEvent))
    use = next(e for e in seen if isinstance(e, ToolUseStreamEvent)).tool_use
    assert use["input"] == {"q": "tulips"}
    await model.send(
        ToolResultEvent(
            tool_result={
                "toolUseId": use["toolUseId"],
                "status": "success",
                "content": [{"json": {"n": 3}}],
            }
        )
    )
    turn = await reader.until(lambda e: isinstance(e, BidiResponseCompleteEvent))
    final = [e.text for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert final == ['lookup returned {"n": 3}.']
    await model.stop()
    await reader.aclose()
    starts = [
        e for e in fake.received if names([e]) == ["contentStart"] and body(e)["type"] == "TOOL"
    ]
    assert body(starts[0])["toolResultInputConfiguration"]["toolUseId"] == use["toolUseId"]
    assert body(starts[0])["role"] == "TOOL"
    assert fake.protocol_errors == []


async def test_history_is_capped_and_starts_with_user(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Long history is trimmed to the caps, oldest first, and begins with a USER message."""
    model = make_model(provider_config={"history": {"max_messages": 5, "max_message_bytes": 10}})
    history: list[Any] = [
        {"role": "user" if i % 2 else "assistant", "content": [{"text": f"message number {i}"}]}
        for i in range(30)
    ]
    await model.start(messages=history)
    reader = Reader(model)
    await reader.turn("hello")
    await model.stop()
    await reader.aclose()
    seen = fake.assistants[0].history
    assert [m["role"] for m in seen] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"][0]["text"] for m in seen] == ["message nu"] * 5
    assert fake.protocol_errors == []


async def test_speculative_and_final_give_one_final_per_turn(make_model: Factory) -> None:
    """Over the wire, each turn has deltas, exactly one assistant final, and audio saying it."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    for text in ("first turn", "second turn"):
        turn = await reader.turn(text)
        finals = [e for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
        deltas = [e for e in turn if isinstance(e, BidiTranscriptStreamEvent) and not e.is_final]
        assert [f.text for f in finals] == [f"You said: {text}."]
        assert "".join(d.text for d in deltas) == f"You said: {text}."
        heard = transcribe(
            b"".join(e.audio for e in turn if isinstance(e, BidiAudioStreamEvent)), 24000
        )
        assert heard == normalize(finals[0].text)
    await model.stop()
    await reader.aclose()


async def test_usage_is_incremental_over_the_wire() -> None:
    """Usage events are the per-turn increments, with or without Nova's details.delta."""
    for usage_delta in (True, False):
        async with serve(usage_delta=usage_delta) as fake:
            model = NovaSonicModel(**fake.model_kwargs)
            await model.start()
            reader = Reader(model)
            sums = []
            for _ in range(3):
                turn = await reader.turn("same words")
                sums.append(
                    sum(e.output_tokens for e in turn if type(e).__name__ == "BidiUsageEvent")
                )
            await model.stop()
            await reader.aclose()
            assert sums[0] > 0
            assert sums == [sums[0]] * 3


async def test_audio_at_other_rates_is_resampled_to_16k(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """8 kHz input is resampled to the session's 16 kHz and still understood."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    await send_speech(model, "eight k", rate=8000)
    turn = await reader.until(lambda e: isinstance(e, BidiResponseCompleteEvent))
    finals = [e.text for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert finals == ["eight k", "You said: eight k."]
    await model.stop()
    await reader.aclose()
    start = next(
        e for e in fake.received if names([e]) == ["contentStart"] and body(e)["type"] == "AUDIO"
    )
    assert body(start)["audioInputConfiguration"]["sampleRateHertz"] == 16000


async def test_output_rate_is_configurable(make_model: Factory) -> None:
    """output_sample_rate=16000 is asked in promptStart and reported on every audio event."""
    model = make_model(provider_config={"audio": {"output_sample_rate": 16000, "voice": "tiffany"}})
    assert model.capabilities.output_sample_rate == 16000
    await model.start()
    reader = Reader(model)
    turn = await reader.turn("rate")
    audio = [e for e in turn if isinstance(e, BidiAudioStreamEvent)]
    assert {e.sample_rate for e in audio} == {16000}
    assert transcribe(b"".join(e.audio for e in audio), 16000) == normalize("You said: rate.")
    await model.stop()
    await reader.aclose()


async def test_large_audio_respects_flow_control(fake: FakeNovaServer, make_model: Factory) -> None:
    """Far more than one HTTP/2 window of audio arrives whole (the fake acknowledges data)."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    sent = await send_speech(model, "flow control works", tail_ms=8000)
    assert sent > 4 * 65535
    await reader.until(lambda e: isinstance(e, BidiResponseCompleteEvent))
    await model.stop()  # flushes the input before sessionEnd
    await reader.aclose()
    received = sum(n for kind, n in fake.assistants[0].inputs if kind == "audio")
    assert received == sent
    assert fake.session_ends == 1


async def test_stop_is_tolerant_of_a_stream_the_service_ended(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """After a modelTimeoutException ends the stream, stop() is quick, clean and leaks nothing."""
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    try:
        model = make_model()
        await model.start()
        transport = model._stream.transport  # type: ignore[union-attr]
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
        with pytest.raises(BidiModelTimeoutError, match="timed out"):
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()
        await model.stop()
        writer = transport.crt_stream._writer
        assert writer.done()
        # awscrt's harmless background error happened and was retrieved by the plugin.
        assert "STREAM_HAS_COMPLETED" in str(writer.exception())
        del writer, transport
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert problems == []
    assert fake.session_ends == 0  # nothing was sent into the ended stream


async def test_stop_right_after_a_stream_exception_sends_nothing_and_never_waits(
    fake: FakeNovaServer, make_model: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarting at once after modelTimeoutException never writes into the reset stream.

    awscrt may never complete a write to a stream the server reset, so such a write
    used to stall stop() until close_timeout (every few restarts in a benchmark).
    """
    caplog.set_level("DEBUG", logger="bidi_core")
    model = make_model()
    for _ in range(6):
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
        with pytest.raises(BidiModelTimeoutError):
            await reader.until(lambda e: False)
        await reader.aclose()
        assert model._stream is not None
        assert model._stream.service_ended
        await model.stop()
    assert fake.session_ends == 0
    assert "graceful close failed" not in caplog.text


async def test_idle_validation_error_is_a_timeout(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """The idle ValidationException (InternalErrorCode=531) raises BidiModelTimeoutError."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    await reader.turn("hi")
    await fake.inject_exception(
        "validationException", "Request failed. InternalErrorCode=531 timed out waiting for input"
    )
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    assert info.value.restart_config == {}
    await reader.aclose()
    await model.stop()


async def test_retryable_stream_error_reconnects_with_history(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """A throttlingException is a recoverable BidiErrorEvent; the new stream has the history."""
    model = make_model()
    await model.start(system_prompt="Remember things.")
    reader = Reader(model)
    await reader.turn("remember the tulips")
    await fake.inject_exception("throttlingException", "Too many requests.")
    seen = await reader.until(lambda e: isinstance(e, BidiErrorEvent))
    error = seen[-1]
    assert isinstance(error, BidiErrorEvent)
    assert error.recoverable
    assert error.code == "ThrottlingException"
    turn = await reader.turn("recall")
    final = [e.text for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert final == ["Earlier you said: remember the tulips."]
    assert len(fake.requests) == 2
    assert fake.assistants[1].system_prompt == "Remember things."
    await model.stop()
    await reader.aclose()
    assert fake.protocol_errors == []


async def test_recovery_budget_exhausted_raises_typed_error(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """With max_error_recoveries=0 a stream exception raises a typed error naming it."""
    model = make_model(provider_config={"max_error_recoveries": 0})
    await model.start()
    reader = Reader(model)
    await reader.turn("hi")
    await fake.inject_exception("modelStreamErrorException", "Stream broke.")
    with pytest.raises(BidiConnectionError) as info:
        await reader.until(lambda e: False)
    assert info.value.code == "ModelStreamErrorException"
    assert isinstance(info.value.__cause__, Exception)
    await reader.aclose()
    await model.stop()


async def test_stream_ending_without_error_raises_and_does_not_spin(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """A stream the service ends without an exception raises BidiConnectionError (no busy loop)."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    await reader.turn("hi")
    fake.sessions[-1].close_output()
    with pytest.raises(BidiConnectionError, match="ended unexpectedly"):
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()


async def test_malformed_frame_raises_protocol_error() -> None:
    """A frame with a broken CRC raises ProviderProtocolError instead of hanging."""
    async with serve(malformed="frame") as fake:
        model = NovaSonicModel(**fake.model_kwargs)
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="[fault:malformed]"))
        with pytest.raises(ProviderProtocolError, match="cannot be decoded"):
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()


async def test_proactive_restart_before_the_limit(make_model: Factory) -> None:
    """connection_limit_s raises BidiModelTimeoutError before Bedrock's 8-minute limit."""
    model = make_model(provider_config={"connection_limit_s": 0.3})
    await model.start()
    reader = Reader(model)
    with pytest.raises(BidiModelTimeoutError, match="limit"):
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()


async def test_nova2_sends_turn_detection_and_interactive_text(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Nova 2 Sonic gets turnDetectionConfiguration and interactive USER text content."""
    model = make_model(
        model_id="amazon.nova-2-sonic-v1:0", provider_config={"turn_detection": "LOW"}
    )
    await model.start()
    reader = Reader(model)
    await reader.turn("typed words")
    await model.stop()
    await reader.aclose()
    start = body(fake.received[0])
    assert start["turnDetectionConfiguration"] == {"endpointingSensitivity": "LOW"}
    text_start = next(
        e for e in fake.received if names([e]) == ["contentStart"] and body(e)["type"] == "TEXT"
    )
    assert (body(text_start)["role"], body(text_start)["interactive"]) == ("USER", True)
    assert fake.requests[0].model_id == "amazon.nova-2-sonic-v1:0"
    assert "%3A" in fake.requests[0].path


async def test_unsupported_input_is_refused_clearly(make_model: Factory) -> None:
    """Images and mid-session system text are refused with a clear UnsupportedInputError."""
    model = make_model()
    await model.start()
    with pytest.raises(UnsupportedInputError, match="image"):
        await model.send(BidiImageInputEvent(image=b"\xff\xd8", mime_type="image/jpeg"))
    with pytest.raises(UnsupportedInputError, match="system_prompt"):
        await model.send(BidiTextInputEvent(text="new rules", role="system"))
    await model.stop()


# --------------------------------------------------------------- credentials


def _refreshing_session(current: list[str], calls: list[str]) -> Any:
    import datetime

    import boto3
    import botocore.credentials
    import botocore.session

    def metadata() -> dict[str, str]:
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
        return {
            "access_key": current[0],
            "secret_key": FAKE_SECRET_KEY + current[0],
            "token": "fake-session-token",
            "expiry_time": expiry.isoformat(),
        }

    def refresh() -> dict[str, str]:
        calls.append(current[0])
        return metadata()

    creds = botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata(), refresh_using=refresh, method="fake-sts"
    )
    core = botocore.session.Session()
    core._credentials = creds  # a session whose provider chain is never consulted
    return boto3.Session(botocore_session=core, region_name="us-east-1")


async def test_temporary_credentials_are_refreshed_for_each_connection(
    fake: FakeNovaServer,
) -> None:
    """Rotated credentials reach the next connection's SigV4 header; the open one stays valid."""
    current = ["AKIDROTATE000000001"]
    calls: list[str] = []
    for key in ("AKIDROTATE000000001", "AKIDROTATE000000002"):
        fake.credentials[key] = FAKE_SECRET_KEY + key
    session = _refreshing_session(current, calls)
    model = NovaSonicModel(
        client_config={
            "boto_session": session,
            "endpoint_uri": fake.endpoint_uri,
            "ca_bundle": fake.ca_path,
        }
    )
    await model.start()
    reader = Reader(model)
    current[0] = "AKIDROTATE000000002"  # rotated mid-connection
    await reader.turn("still signed")
    await model.stop()
    await reader.aclose()
    await model.start()  # a new connection asks the session again
    reader = Reader(model)
    await reader.turn("new key")
    await model.stop()
    await reader.aclose()
    assert [r.access_key for r in fake.requests] == ["AKIDROTATE000000001", "AKIDROTATE000000002"]
    assert all(r.signature_valid for r in fake.requests)
    assert "AKIDROTATE000000002" in calls
    assert model.access_keys_used == ["AKIDROTATE000000001", "AKIDROTATE000000002"]
    assert fake.requests[1].headers.get("x-amz-security-token") == "fake-session-token"
    assert fake.protocol_errors == []


async def test_no_default_identity_chain_is_built(
    fake: FakeNovaServer, make_model: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's IdentityChain (which may probe 169.254.x) is never created."""
    import aws_sdk_bedrock_runtime.client as sdk_client

    async def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("IdentityChain.create must not be called")

    monkeypatch.setattr(sdk_client.IdentityChain, "create", forbidden)
    model = make_model()
    await model.start()
    reader = Reader(model)
    await reader.turn("no chain")
    await model.stop()
    await reader.aclose()


async def test_wrong_secret_is_rejected_by_signature_check(fake: FakeNovaServer) -> None:
    """The fake recomputes SigV4: a known access key with a wrong secret cannot connect."""
    session = fake.boto_session()
    import boto3

    bad = boto3.Session(
        aws_access_key_id=session.get_credentials().access_key,
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    model = NovaSonicModel(
        client_config={
            "boto_session": bad,
            "endpoint_uri": fake.endpoint_uri,
            "ca_bundle": fake.ca_path,
        }
    )
    with pytest.raises(BidiConnectionError) as info:
        await model.start()
    assert "not-the-secret" not in str(info.value)
    assert any("InvalidSignature" in p for p in fake.protocol_errors)
    await model.stop()


async def test_secrets_never_appear_in_repr_or_config_errors(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Neither repr(model) nor its config repr shows the secret key."""
    model = make_model()
    assert FAKE_SECRET_KEY not in repr(model)
    assert FAKE_SECRET_KEY not in repr(model.config)


# -------------------------------------------------------------------- config


def test_constructor_rejects_unknown_keys_naming_accepted_ones() -> None:
    """Unknown keywords and config keys are ConfigErrors naming the accepted and closest keys."""
    with pytest.raises(ConfigError, match="model_id"):
        NovaSonicModel(model="amazon.nova-sonic-v1:0")
    with pytest.raises(ConfigError, match="Did you mean 'voice'"):
        NovaSonicModel(provider_config={"audio": {"voise": "matthew"}})
    with pytest.raises(ConfigError, match="inference"):
        NovaSonicModel(provider_config={"inferance": {}})
    with pytest.raises(ConfigError, match="endpoint_uri"):
        NovaSonicModel(client_config={"endpoint": "https://x"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"client_config": {"region": "us-east-1", "boto_session": object()}}, "not both"),
        ({"client_config": {"endpoint_uri": "http://127.0.0.1:1"}}, "https"),
        ({"provider_config": {"turn_detection": "HIGH"}}, "Nova 2"),
        (
            {"model_id": "amazon.nova-2-sonic-v1:0", "provider_config": {"turn_detection": "LOUD"}},
            "HIGH, MEDIUM, LOW",
        ),
        ({"provider_config": {"audio": {"output_sample_rate": 44100}}}, "24000, 16000, 8000"),
        ({"provider_config": {"audio": {"input_sample_rate": 24000}}}, "16000, 8000"),
        ({"provider_config": {"connection_limit_s": 900}}, "at most 480"),
        ({"provider_config": {"history": {"max_messages": 0}}}, "positive"),
    ],
)
def test_invalid_config_values_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    """Conflicting or invalid settings raise ConfigError with an actionable message."""
    with pytest.raises(ConfigError, match=match):
        NovaSonicModel(**kwargs)


def test_config_is_copied_and_live_objects_kept_by_reference() -> None:
    """Config dicts are private copies; the boto3 session is shared, not deep-copied."""
    session = object()
    provider = {"audio": {"voice": "amy"}, "inference": {"temperature": 0.1}}
    model = NovaSonicModel(provider_config=provider, client_config={"boto_session": session})
    provider["audio"]["voice"] = "changed"
    assert model.config["provider_config"]["audio"]["voice"] == "amy"
    assert model.settings.voice == "amy"
    assert model.config["client_config"]["boto_session"] is session
    other = NovaSonicModel(provider_config=provider)
    assert other.config["provider_config"] is not model.config["provider_config"]


async def test_input_rate_8k_session(fake: FakeNovaServer, make_model: Factory) -> None:
    """input_sample_rate=8000 opens an 8 kHz AUDIO content and 8 kHz audio passes unchanged."""
    model = make_model(provider_config={"audio": {"input_sample_rate": 8000}})
    assert model.capabilities.input_sample_rates == (8000,)
    await model.start()
    reader = Reader(model)
    pcm = speak("low rate", 8000) + bytes(8000 * 2 // 2)
    for offset in range(0, len(pcm), 320):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + 320], sample_rate=8000))
    turn = await reader.until(lambda e: isinstance(e, BidiResponseCompleteEvent))
    assert "You said: low rate." in [
        e.text for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final
    ]
    await model.stop()
    await reader.aclose()
    start = next(
        e for e in fake.received if names([e]) == ["contentStart"] and body(e)["type"] == "AUDIO"
    )
    assert body(start)["audioInputConfiguration"]["sampleRateHertz"] == 8000


def _tagged_chunks(count: int, rate: int = 16000) -> list[bytes]:
    """20 ms chunks of near-silence, each carrying its number in the first samples."""
    size = rate * 20 // 1000 * 2
    return [i.to_bytes(4, "little") + bytes(size - 4) for i in range(count)]


def _audio_received(fake: FakeNovaServer) -> list[bytes]:
    """The audioInput chunks the fake's sessions took in (not those it dropped)."""
    import base64

    pcm = [
        base64.b64decode(body(e)["content"]) for e in fake.received if names([e]) == ["audioInput"]
    ]
    # A replay joins chunks into longer sends: split them back into 20 ms chunks.
    return [p[i : i + 640] for p in pcm for i in range(0, len(p), 640)]


async def _time_limit_mid_audio(
    fake: FakeNovaServer, model: NovaSonicModel, chunks: list[bytes]
) -> tuple[BidiModelTimeoutError, list[bytes]]:
    """Stream *chunks*, with a modelTimeoutException after the first half.

    Like BidiAgent, input whose send() raised the timeout is kept to be sent after
    the restart; returns the timeout and that held input.
    """
    reader = Reader(model)
    held: list[bytes] = []
    half = len(chunks) // 2
    for i, pcm in enumerate(chunks):
        if i == half:
            await fake.inject_exception("modelTimeoutException", "Model has timed out.")
        try:
            await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
        except BidiModelTimeoutError:
            held.append(pcm)
        if i < half:
            await asyncio.sleep(0.005)
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    await reader.aclose()
    return info.value, held


async def test_audio_in_flight_at_a_service_time_limit_is_replayed_on_the_restart(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Audio written after the service ended the stream reaches the restarted stream.

    Bedrock drops what the client wrote after it sent modelTimeoutException; the
    model keeps the last ``replay_ms`` of audio and sends it first on the stream
    started with the timeout's ``restart_config``, so no chunk is lost.
    """
    chunks = _tagged_chunks(40)
    model = make_model()
    await model.start()
    timeout, held = await _time_limit_mid_audio(fake, model, chunks)
    first = set(_audio_received(fake))
    assert not set(chunks[20:]) <= first  # the old stream dropped some: the test can fail
    assert timeout.restart_config["replay_audio_ms"] > 0
    await model.stop()
    await model.start(**timeout.restart_config)
    for pcm in held:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
    await model.stop()
    assert set(chunks) <= set(_audio_received(fake))
    assert fake.protocol_errors == []
    # Only audio from the last replay_ms (500 ms = 25 chunks) is sent twice.
    assert len(_audio_received(fake)) - len(set(_audio_received(fake))) <= 25


async def test_stop_right_after_a_restart_lets_the_service_take_the_replayed_audio(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """stop() waits for the service to take what start() replayed, then ends the session.

    The reader task had not run yet when stop() began, so it returned at once and
    stop() released the stream with the replay still queued in the SDK: the audio a
    time limit had cut off was lost a second time (1 run in 2 of the test above).
    """
    chunks = _tagged_chunks(100)
    model = make_model(provider_config={"audio": {"replay_ms": 2000}})
    await model.start()
    timeout, held = await _time_limit_mid_audio(fake, model, chunks)
    await model.stop()
    # The replay (~85 kB on the wire) outgrows the HTTP/2 window of a new stream: with
    # no window update its end is still queued when start() returns, and stays queued
    # until the window opens again, well after stop() began (and before its 2 s bound).
    fake.window_updates = False
    await model.start(**timeout.restart_config)
    asyncio.get_running_loop().call_later(0.3, setattr, fake, "window_updates", True)
    await model.stop()  # before the reader task first runs
    assert fake.session_ends == 1
    if held:  # the input whose send() raised the timeout, as BidiAgent sends it later
        await model.start()
        for pcm in held:
            await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
        await model.stop()
    assert set(chunks) <= set(_audio_received(fake))
    assert fake.protocol_errors == []


async def test_audio_queued_behind_a_stalled_window_is_replayed_however_old(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Audio still queued in the SDK when the service ends the stream is not lost.

    send() returns once the SDK has buffered an event; while the service takes no
    input (a dry HTTP/2 window) events wait there for longer than ``replay_ms``. They
    never left, so they are replayed whole, however old, not only the last 500 ms of
    what send() accepted.
    """
    chunks = _tagged_chunks(150)
    model = make_model()
    await model.start()
    reader = Reader(model)
    fake.window_updates = False
    held: list[bytes] = []
    accepted = 0

    async def stream_audio() -> None:
        nonlocal accepted
        for pcm in chunks:
            if held:  # after the timeout, as BidiAgent does: kept for the restart
                held.append(pcm)
                continue
            try:
                await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
                accepted += 1
            except BidiModelTimeoutError:
                held.append(pcm)

    sender = asyncio.create_task(stream_audio())
    before = -1
    while accepted != before:  # until send() blocks: the window and the SDK buffer are full
        before = accepted
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.6)  # the queued events are now older than replay_ms
    await fake.inject_exception("modelTimeoutException", "Model has timed out.")
    await sender
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    await reader.aclose()
    fake.window_updates = True
    assert set(chunks[:accepted]) - set(_audio_received(fake)), "send() accepted, never sent"
    await model.stop()
    await model.start(**info.value.restart_config)
    for pcm in held:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
    await model.stop()
    assert set(chunks) <= set(_audio_received(fake))
    assert fake.protocol_errors == []


async def test_a_plain_start_after_a_time_limit_does_not_replay_old_audio(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Without the timeout's restart_config (or with replay_ms 0) nothing old is sent."""
    chunks = _tagged_chunks(20)
    for kwargs, config in (({}, False), ({"provider_config": {"audio": {"replay_ms": 0}}}, True)):
        fake.received.clear()
        model = make_model(**kwargs)
        await model.start()
        timeout, _ = await _time_limit_mid_audio(fake, model, chunks)
        assert ("replay_audio_ms" in timeout.restart_config) is not config
        await model.stop()
        before = len(_audio_received(fake))
        await model.start(**(timeout.restart_config if config else {}))
        await model.stop()
        assert len(_audio_received(fake)) == before


async def test_input_for_a_stream_the_service_ended_raises_the_timeout_and_writes_nothing(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Once the reader saw the time limit, send() raises it (to buffer) without a write."""
    model = make_model()
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    with pytest.raises(BidiModelTimeoutError):
        await reader.until(lambda e: False)
    await reader.aclose()
    stream = model._stream
    assert stream is not None
    body_ = stream.transport.request_body
    assert body_.closed  # a writer blocked on a full buffer would have been released
    with pytest.raises(BidiModelTimeoutError, match="timed out"):
        await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000))
    await model.stop()


@pytest.mark.parametrize("value", [-1, 5001, 1.5, True, "500"])
def test_replay_ms_must_be_an_int_of_milliseconds(make_model: Factory, value: Any) -> None:
    """A bad audio.replay_ms is refused with the accepted range."""
    with pytest.raises(ConfigError, match=r"replay_ms must be an int from 0 .* 5000"):
        make_model(provider_config={"audio": {"replay_ms": value}})


async def test_a_stalled_stream_becomes_a_restart_that_loses_no_audio(
    fake: FakeNovaServer, make_model: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write the stream never takes (HTTP/2 flow control stuck) ends in a timeout, no hang.

    send() and receive() raise BidiModelTimeoutError after the stall bound, so an agent
    restarts; the audio written before the stall is sent again on the new stream.
    """
    import bidi_nova_sonic._model as nova

    monkeypatch.setattr(nova, "_WRITE_STALL_S", 0.2)
    chunks = _tagged_chunks(10)
    model = make_model()
    await model.start()
    reader = Reader(model)
    for pcm in chunks[:5]:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
    stream = model._stream
    assert stream is not None

    async def never(chunk: Any) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(stream.duplex.input_stream, "send", never)
    with pytest.raises(BidiModelTimeoutError, match="took no input"):
        await model.send(BidiAudioInputEvent(audio=chunks[5], sample_rate=16000))
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    await reader.aclose()
    assert info.value.restart_config["replay_audio_ms"] == 100
    await model.stop()
    await model.start(**info.value.restart_config)
    for pcm in chunks[5:]:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
    await model.stop()
    assert set(chunks) <= set(_audio_received(fake))
