"""Constructor, configuration, URL building and secret handling (no network)."""

from __future__ import annotations

import pickle
import ssl

import pytest

from bidi_core import ConfigError
from bidi_openai_realtime import DEFAULT_CONNECTION_LIMIT_S, OpenAIRealtimeModel, Secret
from bidi_openai_realtime._settings import build_url, default_session, is_loopback


def test_defaults() -> None:
    """The default model connects to api.openai.com with the GA session defaults."""
    model = OpenAIRealtimeModel()
    assert model.model_id == "gpt-realtime"
    assert model.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert model.connection_limit_s() == DEFAULT_CONNECTION_LIMIT_S == 3300.0
    session = model._settings.session
    assert session["type"] == "realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}


def test_unknown_keyword_names_the_closest() -> None:
    """An unknown constructor keyword is an error suggesting the right one."""
    with pytest.raises(ConfigError, match="Did you mean 'model_id'"):
        OpenAIRealtimeModel(model="gpt-realtime")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"provider_config": {"voice": "ash"}}, "Unknown key 'voice'.*Accepted keys: audio"),
        ({"provider_config": {"audio": {"voise": "ash"}}}, "Did you mean 'voice'"),
        ({"client_config": {"apikey": "x"}}, "Did you mean 'api_key'"),
        ({"provider_config": {"audio": {"input_sample_rate": 16000}}}, "24 kHz only"),
        ({"provider_config": {"audio": {"channels": 2}}}, "channels"),
        ({"provider_config": {"inference": {"modalities": ["text"]}}}, "output_modalities"),
        ({"provider_config": {"inference": {"input_audio_format": "pcm16"}}}, "audio.input.format"),
        (
            {
                "provider_config": {
                    "inference": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}
                }
            },
            "PCM16 at 24 kHz",
        ),
        ({"provider_config": {"inference": {"output_modalities": ["video"]}}}, "output_modalities"),
        ({"provider_config": {"connection_limit_s": 0}}, "number of seconds > 0"),
        ({"provider_config": {"connection_limit_s": "soon"}}, "number of seconds > 0"),
        ({"client_config": {"auth_header": "x-key"}}, "auth_header"),
        ({"client_config": {"headers": {"OpenAI-Beta": "realtime=v1"}}}, "OpenAI-Beta"),
        ({"client_config": {"base_url": "ftp://example.com"}}, "http"),
        ({"client_config": {"max_message_size": 1000}}, "1 MiB"),
        ({"model_id": ""}, "model_id"),
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object], pattern: str) -> None:
    """Bad keys and values raise ConfigError with a message saying what to do."""
    with pytest.raises(ConfigError, match=pattern):
        OpenAIRealtimeModel(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "query", "expected"),
    [
        ("wss://api.openai.com/v1", None, "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("https://proxy.example/v1/", None, "wss://proxy.example/v1/realtime?model=gpt-realtime"),
        ("http://127.0.0.1:8080/v1", None, "ws://127.0.0.1:8080/v1/realtime?model=gpt-realtime"),
        (
            "https://res.openai.azure.com/openai/v1",
            None,
            "wss://res.openai.azure.com/openai/v1/realtime?model=gpt-realtime",
        ),
        (
            "https://res.openai.azure.com/openai",
            {"api-version": "2025-08-28", "deployment": "my-rt", "model": None},
            "wss://res.openai.azure.com/openai/realtime?api-version=2025-08-28&deployment=my-rt",
        ),
        (
            "https://gw.example/openai?api-version=2025-08-28",
            None,
            "wss://gw.example/openai/realtime?api-version=2025-08-28&model=gpt-realtime",
        ),
    ],
)
def test_socket_url(base_url: str, query: dict[str, object] | None, expected: str) -> None:
    """The socket is {base_url}/realtime?model=...; http(s) maps to ws(s); queries merge."""
    assert build_url(base_url, "gpt-realtime", query) == expected


def test_plain_text_to_a_remote_host_needs_opt_in() -> None:
    """ws:// or http:// to a non-loopback host is refused unless allow_insecure is set."""
    with pytest.raises(ConfigError, match="allow_insecure"):
        OpenAIRealtimeModel(client_config={"base_url": "http://10.1.2.3/v1"})
    model = OpenAIRealtimeModel(
        client_config={"base_url": "ws://gateway.internal/v1", "allow_insecure": True}
    )
    assert model.url.startswith("ws://gateway.internal/v1/realtime")
    for host in ("localhost", "127.0.0.1", "127.9.9.9", "[::1]", "::1"):
        assert is_loopback(host), host
    assert not is_loopback("example.com")
    assert not is_loopback("10.0.0.1")


def test_inference_fields_pass_through_deep_merged() -> None:
    """Every GA session field in provider_config['inference'] reaches the session, deep-merged."""
    model = OpenAIRealtimeModel(
        provider_config={
            "audio": {"voice": "cedar", "speed": 1.1},
            "inference": {
                "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                "transcription": {"model": "gpt-4o-transcribe", "language": "de"},
                "noise_reduction": {"type": "near_field"},
                "max_output_tokens": 512,
                "tracing": "auto",
                "truncation": "disabled",
                "tool_choice": "required",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {"noise_reduction": {"type": "far_field"}}},
                "brand_new_field": {"x": 1},
            },
        }
    )
    session = model._settings.session
    audio_in = session["audio"]["input"]
    assert audio_in["turn_detection"] == {  # deep-merged over the defaults
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert audio_in["transcription"] == {"model": "gpt-4o-transcribe", "language": "de"}
    assert audio_in["noise_reduction"] == {"type": "far_field"}
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "cedar",
        "speed": 1.1,
    }
    assert session["max_output_tokens"] == 512
    assert session["tracing"] == "auto"
    assert session["truncation"] == "disabled"
    assert session["tool_choice"] == "required"
    assert session["include"] == ["item.input_audio_transcription.logprobs"]
    assert session["brand_new_field"] == {"x": 1}


def test_turn_detection_can_be_disabled() -> None:
    """inference turn_detection=None sends JSON null (manual turns)."""
    model = OpenAIRealtimeModel(provider_config={"inference": {"turn_detection": None}})
    assert model._settings.session["audio"]["input"]["turn_detection"] is None


def test_no_cross_instance_mutation() -> None:
    """Instances share no mutable config: defaults and the caller's dicts are never changed."""
    provider_config = {"audio": {"voice": "ash"}, "inference": {"tools": []}}
    first = OpenAIRealtimeModel(provider_config=provider_config)
    second = OpenAIRealtimeModel()
    first._settings.session["audio"]["output"]["voice"] = "mutated"
    first.config["provider_config"]["audio"]["voice"] = "mutated"
    assert provider_config == {"audio": {"voice": "ash"}, "inference": {"tools": []}}
    assert second._settings.session["audio"]["output"]["voice"] == "marin"
    assert default_session()["audio"]["output"]["voice"] == "marin"
    third = OpenAIRealtimeModel(provider_config=provider_config)
    assert third._settings.session["audio"]["output"]["voice"] == "ash"
    assert third.config["provider_config"] is not provider_config


def test_live_objects_are_kept_by_reference() -> None:
    """An SSL context in client_config is shared, not copied."""
    context = ssl.create_default_context()
    model = OpenAIRealtimeModel(client_config={"ssl": context})
    assert model.config["client_config"]["ssl"] is context
    assert model._settings.ssl is context
    with pytest.raises(ConfigError, match="wss"):
        OpenAIRealtimeModel(client_config={"ssl": context, "base_url": "http://127.0.0.1:1/v1"})


def test_connection_limit_is_configurable() -> None:
    """provider_config['connection_limit_s'] sets the proactive restart; None turns it off."""
    assert (
        OpenAIRealtimeModel(provider_config={"connection_limit_s": 600}).connection_limit_s() == 600
    )
    assert (
        OpenAIRealtimeModel(provider_config={"connection_limit_s": None}).connection_limit_s()
        is None
    )


def test_api_key_never_shows() -> None:
    """The API key (and secret headers) never appear in repr, str or the config's repr."""
    model = OpenAIRealtimeModel(
        client_config={
            "api_key": "sk-very-secret",
            "headers": {"api-key": "azure-secret", "X-Trace": "1"},
        }
    )
    for text in (
        repr(model),
        str(model),
        repr(model.config),
        str(model.config),
        repr(model._settings),
    ):
        assert "sk-very-secret" not in text
        assert "azure-secret" not in text
    assert model.config["client_config"]["headers"]["X-Trace"] == "1"
    headers = model._settings.http_headers("sk-very-secret")
    assert headers["Authorization"] == "Bearer sk-very-secret"
    assert headers["api-key"] == "azure-secret"
    assert repr(Secret("x")) == str(Secret("x")) == "Secret('***')"
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))


def test_auth_headers() -> None:
    """Organization and project headers are sent; Azure uses the api-key header."""
    model = OpenAIRealtimeModel(client_config={"organization": "org_1", "project": "proj_1"})
    assert model._settings.http_headers("k") == {
        "Authorization": "Bearer k",
        "OpenAI-Organization": "org_1",
        "OpenAI-Project": "proj_1",
    }
    azure = OpenAIRealtimeModel(client_config={"auth_header": "api-key"})
    assert azure._settings.http_headers("k") == {"api-key": "k"}


async def test_missing_key_names_both_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without api_key and OPENAI_API_KEY, start() fails naming both."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIRealtimeModel(client_config={"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*client_config=.*api_key"):
        await model.start()
    assert model.state.value == "idle"
