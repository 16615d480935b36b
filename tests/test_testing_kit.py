"""The testing kit: ScriptedAssistant behaviours, the speech codec, TLS and fake helpers."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidi_core import PluginLoadError, ToolSpec
from bidi_core.audio import StreamResampler
from bidi_core.testing import (
    Action,
    AssistantConfig,
    AudioChunk,
    FakeServer,
    Fault,
    Interrupted,
    ResponseComplete,
    ResponseStart,
    ScriptedAssistant,
    SessionHandle,
    ToolCall,
    ToolCancel,
    TranscriptDelta,
    TranscriptFinal,
    Usage,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
    _assistant,
    free_port,
    load_fake,
    loopback_tls,
    speak,
    transcribe,
)
from bidi_core.testing.speech import ALPHABET, normalize


def tool(name: str) -> ToolSpec:
    return {"name": name, "description": name, "inputSchema": {"json": {"type": "object"}}}


class Driver:
    """Reads a ScriptedAssistant's actions the way a fake server does."""

    def __init__(self, assistant: ScriptedAssistant) -> None:
        self.assistant = assistant
        self.actions: list[Action] = []
        self._iter: AsyncIterator[Action] = aiter(assistant.actions())

    async def until(self, predicate: Callable[[Action], bool]) -> list[Action]:
        start = len(self.actions)
        async with asyncio.timeout(10):
            while True:
                action = await anext(self._iter)
                self.actions.append(action)
                if predicate(action):
                    return self.actions[start:]

    async def answer(self) -> str:
        turn = await self.until(lambda a: isinstance(a, ResponseComplete))
        finals = [a.text for a in turn if isinstance(a, TranscriptFinal)]
        return finals[0] if finals else ""

    async def aclose(self) -> None:
        self.assistant.close()
        await self._iter.aclose()  # type: ignore[attr-defined]


@pytest.fixture
async def driver() -> AsyncIterator[Driver]:
    assistant = ScriptedAssistant(AssistantConfig(seed=4))
    assistant.start(tools=[tool("get_weather"), tool("get_time")])
    drive = Driver(assistant)
    yield drive
    await drive.aclose()


def feed_speech(assistant: ScriptedAssistant, text: str, rate: int = 16000) -> None:
    """Feed *text* as speech plus 400 ms of silence, in 20 ms chunks like a microphone."""
    pcm = speak(text, rate) + bytes(rate * 400 // 1000 * 2)
    step = rate // 50 * 2
    for offset in range(0, len(pcm), step):
        assistant.user_audio(pcm[offset : offset + step], rate)


# ---------------------------------------------------------------- answers


async def test_plain_text_is_echoed_in_a_complete_response(driver: Driver) -> None:
    """An answer is start, deltas, audio, final transcript, usage, complete, handle."""
    driver.assistant.user_text("good morning")
    turn = await driver.until(lambda a: isinstance(a, SessionHandle))
    kinds = [type(a) for a in turn]
    assert kinds[0] is ResponseStart
    assert kinds[-4:] == [TranscriptFinal, Usage, ResponseComplete, SessionHandle]
    deltas = [a.text for a in turn if isinstance(a, TranscriptDelta)]
    assert "".join(deltas) == "You said: good morning."
    audio = b"".join(a.pcm for a in turn if isinstance(a, AudioChunk))
    assert transcribe(audio, 24000) == normalize("You said: good morning.")
    done = next(a for a in turn if isinstance(a, ResponseComplete))
    assert done.stop_reason == "complete"
    assert driver.assistant.inputs == [("text", "good morning")]


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("what is the weather in Paris?", "You said: what is the weather in Paris?"),
        ("Stop!", "You said: Stop!"),
        ("done.", "You said: done."),
        ("hello", "You said: hello."),
    ],
)
async def test_an_answer_never_doubles_the_final_punctuation(
    driver: Driver, said: str, answer: str
) -> None:
    """Text that already ends a sentence is echoed without a second full stop ("?." before)."""
    driver.assistant.user_text(said)
    assert await driver.answer() == answer


def test_without_faults_strips_only_the_directives() -> None:
    """without_faults() removes [fault:...] directives and keeps every other word."""
    from bidi_core.testing._assistant import without_faults

    assert without_faults("hello [fault:time_limit] there") == "hello there"
    assert without_faults("[fault:error]") == ""
    assert without_faults("keep [then cancel]") == "keep [then cancel]"


async def test_same_seed_gives_the_same_actions() -> None:
    """Two assistants with one seed produce identical actions (ids included)."""
    runs = []
    for _ in range(2):
        assistant = ScriptedAssistant(AssistantConfig(seed=9))
        assistant.start()
        drive = Driver(assistant)
        assistant.user_text("same")
        runs.append(await drive.until(lambda a: isinstance(a, SessionHandle)))
        await drive.aclose()
    assert runs[0] == runs[1]


# ------------------------------------------------------------------ tools


async def test_naming_a_tool_calls_it_with_json_arguments(driver: Driver) -> None:
    """A tool named in the text is called with the first JSON object as its input."""
    driver.assistant.user_text('please get_weather {"city": "Rome", "days": 2} thanks')
    turn = await driver.until(lambda a: isinstance(a, ResponseComplete))
    (call,) = [a for a in turn if isinstance(a, ToolCall)]
    assert (call.name, call.input) == ("get_weather", {"city": "Rome", "days": 2})
    assert turn[-1] == ResponseComplete(response_id=call.response_id, stop_reason="tool_use")
    driver.assistant.tool_result(
        call.tool_use_id,
        {"toolUseId": call.tool_use_id, "status": "success", "content": [{"json": {"t": 21}}]},
    )
    assert await driver.answer() == 'get_weather returned {"t": 21}.'


async def test_two_tools_in_one_response_are_answered_after_both_results(driver: Driver) -> None:
    """Several tools named at once are one response; the answer waits for every result."""
    driver.assistant.user_text("get_time and get_weather")
    turn = await driver.until(lambda a: isinstance(a, ResponseComplete))
    calls = [a for a in turn if isinstance(a, ToolCall)]
    assert sorted(c.name for c in calls) == ["get_time", "get_weather"]
    assert len({c.response_id for c in calls}) == 1
    first, second = calls
    driver.assistant.tool_result(
        first.tool_use_id,
        {"toolUseId": first.tool_use_id, "status": "error", "content": [{"text": "down"}]},
    )
    driver.assistant.tool_result(second.tool_use_id)
    assert await driver.answer() == (
        f"{first.name} returned an error: down; {second.name} returned nothing."
    )


async def test_tool_names_match_whole_words_only(driver: Driver) -> None:
    """'get_weatherly' does not call get_weather."""
    driver.assistant.user_text("get_weatherly is a word")
    assert await driver.answer() == "You said: get_weatherly is a word."


async def test_then_cancel_withdraws_the_calls(driver: Driver) -> None:
    """'[then cancel]' issues the calls and withdraws them at once."""
    driver.assistant.user_text("get_time [then cancel]")
    actions = await driver.until(lambda a: isinstance(a, ToolCancel))
    (call,) = [a for a in actions if isinstance(a, ToolCall)]
    assert actions[-1] == ToolCancel(tool_use_ids=(call.tool_use_id,))
    driver.assistant.tool_result(call.tool_use_id)
    assert (
        await driver.answer() == f"I got a result for {call.tool_use_id}, which I did not ask for."
    )


# ----------------------------------------------------------------- memory


async def test_recall_uses_history_given_to_start() -> None:
    """'recall' answers with the previous user text, from history passed to start()."""
    assistant = ScriptedAssistant()
    assistant.start(
        messages=[
            {"role": "user", "content": [{"text": "first"}, {"text": "pineapples"}]},
            {"role": "assistant", "content": [{"text": "not me"}]},
        ]
    )
    drive = Driver(assistant)
    try:
        assistant.user_text("recall")
        assert await drive.answer() == "Earlier you said: pineapples."
    finally:
        await drive.aclose()


async def test_recall_without_anything_said(driver: Driver) -> None:
    """With nothing said before, recall says so."""
    driver.assistant.user_text("recall")
    assert await driver.answer() == "You have not said anything."


async def test_recall_after_resuming_a_snapshot() -> None:
    """A snapshot restores memory in a new assistant (provider resumption)."""
    first = ScriptedAssistant()
    first.start()
    drive = Driver(first)
    first.user_text("the code is 1234")
    await drive.answer()
    snapshot = first.snapshot()
    await drive.aclose()
    assert json.loads(json.dumps(snapshot)) == snapshot  # JSON-safe
    second = ScriptedAssistant()
    second.start(resume=snapshot)
    drive = Driver(second)
    try:
        second.user_text("recall")
        assert await drive.answer() == "Earlier you said: the code is 1234."
    finally:
        await drive.aclose()


# ----------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("error", "injected_error"),
        ("disconnect", "injected_disconnect"),
        ("malformed", "injected_malformed"),
        ("time_limit", "time_limit"),
    ],
)
async def test_fault_phrases_inject_faults(driver: Driver, kind: str, code: str) -> None:
    """'[fault:<kind>]' yields that Fault with its code and a message, and no answer."""
    driver.assistant.user_text(f"now [fault:{kind}] please")
    (fault,) = await driver.until(lambda a: isinstance(a, Fault))
    assert isinstance(fault, Fault)
    assert (fault.kind, fault.code) == (kind, code)
    assert fault.message


async def test_fault_after_turns() -> None:
    """fault_after_turns=2 injects the configured fault right after the second answer."""
    assistant = ScriptedAssistant(AssistantConfig(fault_after_turns=2, fault="malformed"))
    assistant.start()
    drive = Driver(assistant)
    try:
        for text in ("one", "two"):
            assistant.user_text(text)
            await drive.until(lambda a: isinstance(a, SessionHandle))
        assert not [a for a in drive.actions if isinstance(a, Fault)]
        (fault,) = await drive.until(lambda a: isinstance(a, Fault))
        assert isinstance(fault, Fault)
        assert fault.kind == "malformed"
    finally:
        await drive.aclose()


async def test_time_limit_fault_after_time_limit_s() -> None:
    """time_limit_s makes actions() yield a time_limit Fault once that time has passed."""
    assistant = ScriptedAssistant(AssistantConfig(time_limit_s=0.05))
    assistant.start()
    drive = Driver(assistant)
    try:
        (fault,) = await drive.until(lambda a: isinstance(a, Fault))
        assert isinstance(fault, Fault)
        assert fault.kind == "time_limit"
    finally:
        await drive.aclose()


def test_bad_config_values_are_refused() -> None:
    """AssistantConfig refuses values that would fail later, naming the field."""
    with pytest.raises(ValueError, match="'fault' must be one of"):
        AssistantConfig(fault="explode")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="'output_sample_rate' must be a whole number of Hz from 8000"
    ):
        AssistantConfig(output_sample_rate=4000)


# ----------------------------------------------------------------- speech


async def test_speech_is_detected_transcribed_and_answered(driver: Driver) -> None:
    """Loud audio starts an utterance; silence_ms of quiet ends it; it is transcribed."""
    feed_speech(driver.assistant, "what time")
    actions = await driver.until(lambda a: isinstance(a, ResponseComplete))
    started, stopped, heard = actions[:3]
    assert isinstance(started, UserSpeechStarted)
    assert isinstance(stopped, UserSpeechStopped)
    assert heard == UserTranscript(item_id=started.item_id, text="what time")
    assert stopped.audio_end_ms > started.audio_start_ms
    finals = [a.text for a in actions if isinstance(a, TranscriptFinal)]
    assert finals == ["You said: what time."]
    usage = next(a for a in actions if isinstance(a, Usage))
    assert usage.input_audio_tokens > 0
    assert usage.input_text_tokens == 0


async def test_silence_is_not_speech(driver: Driver) -> None:
    """Quiet audio below speech_threshold produces nothing."""
    for _ in range(50):
        driver.assistant.user_audio(bytes(640), 16000)
    driver.assistant.user_text("marker")
    first = (await driver.until(lambda a: True))[0]
    assert isinstance(first, ResponseStart)


async def test_end_of_audio_finishes_the_utterance_at_once(driver: Driver) -> None:
    """end_of_audio() ends an utterance without waiting for silence."""
    driver.assistant.user_audio(speak("hi", 16000), 16000)
    driver.assistant.end_of_audio()
    actions = await driver.until(lambda a: isinstance(a, UserTranscript))
    assert actions[-1].text == "hi"  # type: ignore[union-attr]


class _SleepRecorder:
    """Stands in for the asyncio module inside the assistant, recording sleeps."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)


async def test_story_is_paced_at_story_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A story's audio chunks are paced at story_pace (seconds per second of audio)."""
    recorder = _SleepRecorder()
    monkeypatch.setattr(_assistant, "asyncio", recorder)
    config = AssistantConfig(story_pace=0.5, story_seconds=2.0, chunk_ms=20)
    assistant = ScriptedAssistant(config)
    assistant.start()
    drive = Driver(assistant)
    try:
        assistant.user_text("a story please")
        turn = await drive.until(lambda a: isinstance(a, ResponseComplete))
    finally:
        await drive.aclose()
    chunks = [a for a in turn if isinstance(a, AudioChunk)]
    audio_s = sum(len(c.pcm) for c in chunks) / 2 / config.output_sample_rate
    assert audio_s >= config.story_seconds
    assert len(recorder.sleeps) == len(chunks)
    assert sum(recorder.sleeps) == pytest.approx(config.story_pace * audio_s)


async def test_short_answers_are_not_paced_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """With pace=0 ordinary answers stream without waiting."""
    recorder = _SleepRecorder()
    monkeypatch.setattr(_assistant, "asyncio", recorder)
    assistant = ScriptedAssistant()
    assistant.start()
    drive = Driver(assistant)
    try:
        assistant.user_text("quick")
        await drive.answer()
    finally:
        await drive.aclose()
    assert recorder.sleeps == []


async def test_speech_during_an_answer_interrupts_it(driver: Driver) -> None:
    """Barge-in: Interrupted, ResponseComplete(interrupted), no more of that audio."""
    driver.assistant.user_text("tell me a story")
    start = (await driver.until(lambda a: isinstance(a, AudioChunk)))[0]
    assert isinstance(start, ResponseStart)
    assert driver.assistant.response_active
    feed_speech(driver.assistant, "stop")
    after = await driver.until(lambda a: isinstance(a, TranscriptFinal))
    story = start.response_id
    assert after[:2] == [
        Interrupted(response_id=story),
        ResponseComplete(response_id=story, stop_reason="interrupted"),
    ]
    assert not [a for a in after[2:] if getattr(a, "response_id", None) == story]
    assert after[-1].text == "You said: stop."  # type: ignore[union-attr]


async def test_barge_in_over_two_queued_answers_completes_each_started_one() -> None:
    """Every announced response completes once; a queued one that never began vanishes."""
    assistant = ScriptedAssistant(AssistantConfig(pace=0.5))
    assistant.start()
    drive = Driver(assistant)
    try:
        assistant.user_text("one")
        assistant.user_text("two")
        await drive.until(lambda a: isinstance(a, AudioChunk))
        feed_speech(assistant, "stop")
        await drive.until(lambda a: isinstance(a, TranscriptFinal) and "stop" in a.text)
        await drive.until(lambda a: isinstance(a, ResponseComplete))
    finally:
        await drive.aclose()
    started = [a.response_id for a in drive.actions if isinstance(a, ResponseStart)]
    completed = [a.response_id for a in drive.actions if isinstance(a, ResponseComplete)]
    assert sorted(started) == sorted(completed)  # each start has exactly one complete
    interrupted = [a.response_id for a in drive.actions if isinstance(a, Interrupted)]
    assert interrupted == [started[0]]
    finals = [a.text for a in drive.actions if isinstance(a, TranscriptFinal)]
    assert finals == ["You said: stop."]  # "two" was dropped before it began


# -------------------------------------------------------------- speech codec

RATES = [8000, 16000, 24000, 48000]


@pytest.mark.parametrize("rate", RATES)
@given(text=st.text(alphabet=ALPHABET, max_size=12))
def test_speak_transcribe_round_trip(rate: int, text: str) -> None:
    """transcribe(speak(text)) gives the text back at every supported rate."""
    assert transcribe(speak(text, rate), rate) == text


@pytest.mark.parametrize(("source", "target"), [(48000, 16000), (16000, 24000), (44100, 16000)])
@given(text=st.text(alphabet=ALPHABET, min_size=1, max_size=8))
def test_speech_survives_resampling(source: int, target: int, text: str) -> None:
    """Spoken text is still understood after the core's streaming resampler."""
    pcm = speak(text, source)
    resampler = StreamResampler(source, target)
    step = source // 50 * 2
    out = b"".join(resampler.process(pcm[i : i + step]) for i in range(0, len(pcm), step))
    assert transcribe(out, target) == text


def test_unknown_characters_are_spoken_as_question_marks() -> None:
    """Characters outside the alphabet come back as '?', upper case as lower case."""
    assert transcribe(speak("Hé!", 16000), 16000) == normalize("Hé!") == "h?!"


def test_speak_refuses_low_rates() -> None:
    """Rates under 8 kHz cannot carry the tones; speak() says so."""
    with pytest.raises(ValueError, match=r"sample_rate >= 8000 \(got 4000\)"):
        speak("x", 4000)


def test_speak_timing_is_40_ms_per_character() -> None:
    """Each character is 40 ms of PCM16 mono audio."""
    assert len(speak("abc", 16000)) == 3 * 16000 * 40 // 1000 * 2


# ---------------------------------------------------------------- networking


def test_free_port_can_be_bound() -> None:
    """free_port() returns a port on 127.0.0.1 that can be listened on."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port


async def _echo_over_tls(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> Any:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        try:
            writer.write(b"ping\n")
            line = await reader.readline()
            tls = writer.get_extra_info("ssl_object")
            return line, tls.version(), tls.selected_alpn_protocol()
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


async def test_loopback_tls_completes_a_real_handshake() -> None:
    """The throwaway CA's contexts complete a verified TLS handshake on 127.0.0.1."""
    pytest.importorskip("trustme")
    tls = loopback_tls()
    line, version, _ = await asyncio.wait_for(
        _echo_over_tls(tls.server_context, tls.client_context), 10
    )
    assert line == b"ping\n"
    assert version in ("TLSv1.2", "TLSv1.3")
    assert tls.ca_path.read_bytes() == tls.ca_pem
    assert tls.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")


async def test_loopback_tls_offers_alpn() -> None:
    """alpn=['h2'] is negotiated with a client that asks for it (HTTP/2 fakes)."""
    pytest.importorskip("trustme")
    tls = loopback_tls(alpn=["h2"])
    client = ssl.create_default_context(cafile=str(tls.ca_path))
    client.set_alpn_protocols(["h2"])
    _, _, alpn = await asyncio.wait_for(_echo_over_tls(tls.server_context, client), 10)
    assert alpn == "h2"


async def test_loopback_tls_is_not_trusted_by_default() -> None:
    """A client without the throwaway CA refuses the certificate (the check is real)."""
    pytest.importorskip("trustme")
    tls = loopback_tls()
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(_echo_over_tls(tls.server_context, ssl.create_default_context()), 10)


# --------------------------------------------------------------- load_fake


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bidi_x.testing", r"must look like 'module:attribute', got 'bidi_x.testing'"),
        (":serve", r"must look like 'module:attribute'"),
        (
            "bidi_no_such_plugin.testing:serve",
            r"The fake server 'bidi_no_such_plugin.testing' needs its plugin's test extra",
        ),
        ("json:no_such_serve", r"'json' has no callable 'no_such_serve'; check the plugin's fake="),
        ("json:__name__", r"'json' has no callable '__name__'"),
    ],
)
def test_load_fake_errors_are_clear(spec: str, message: str) -> None:
    """A bad fake= spec is a PluginLoadError saying what is wrong and what to do."""
    with pytest.raises(PluginLoadError, match=message):
        load_fake(spec)


def test_load_fake_names_the_plugin_distribution_and_how_to_install_it() -> None:
    """A fake whose module cannot import names that plugin's test extra, never another's."""
    with pytest.raises(PluginLoadError) as info:
        load_fake("bidi_no_such_plugin.testing:serve", "bidi-nova-sonic")
    message = str(info.value)
    assert "needs bidi-nova-sonic's test extra" in message
    assert "./dev install bidi-nova-sonic[test]" in message
    assert "openai" not in message


def test_load_fake_returns_the_factory() -> None:
    """A good spec returns the named callable."""
    assert load_fake("json:dumps") is json.dumps


def test_fake_server_protocol_is_structural() -> None:
    """Any object with model_kwargs, assistants and received is a FakeServer."""

    class Fake:
        def __init__(self) -> None:
            self.model_kwargs: dict[str, Any] = {}
            self.assistants: list[ScriptedAssistant] = []
            self.received: list[Any] = []

    assert isinstance(Fake(), FakeServer)
    assert not isinstance(object(), FakeServer)


# ------------------------------------------------------ resolve_to_loopback


def test_resolve_to_loopback_maps_names_and_refuses_the_rest() -> None:
    """Mapped names resolve to 127.0.0.1 at the fake's port; any other name fails."""
    import socket

    from bidi_core.testing import resolve_to_loopback

    with resolve_to_loopback({"api.example.com": 4321}):
        infos = socket.getaddrinfo("api.example.com", 443, type=socket.SOCK_STREAM)
        assert {info[4] for info in infos} == {("127.0.0.1", 4321)}
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
        for name in ("example.org", "169.254.169.254", "10.0.0.1"):
            with pytest.raises(socket.gaierror, match="not resolvable in this test"):
                socket.getaddrinfo(name, 443)
    assert socket.getaddrinfo is not None


async def test_resolve_to_loopback_covers_the_event_loop_resolver() -> None:
    """asyncio's loop.getaddrinfo (what websockets and httpx use) goes through the patch."""
    import socket

    from bidi_core.testing import resolve_to_loopback

    loop = asyncio.get_running_loop()
    with resolve_to_loopback({"api.example.com": 4321}):
        infos = await loop.getaddrinfo("api.example.com", 443, type=socket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 4321)
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("example.org", 443)
