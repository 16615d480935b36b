"""Every setting is checked in the constructor: type, finite, in range, named in the error."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bidi_core import BidiAgent, ConfigError, get_model
from bidi_gemini_live import GeminiLiveModel


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param(
            {"model_id": 123},
            r"gemini_live model_id must be a non-empty str such as 'gemini-.*\(got 123\)",
            id="model-id-int",
        ),
        pytest.param(
            {"provider_config": {"audio": {"input_sample_rate": math.nan}}},
            r"\['input_sample_rate'\] must be a whole number of Hz from 8000 to 192000 "
            r"\(got nan\)",
            id="input-rate-nan",
        ),
        pytest.param(
            {"provider_config": {"audio": {"input_sample_rate": "16000"}}},
            r"\['input_sample_rate'\] must be a whole number of Hz .*a str",
            id="input-rate-str",
        ),
        pytest.param(
            {"provider_config": {"audio": {"input_sample_rate": 16}}},
            r"Rates are in Hz, not kHz",
            id="input-rate-khz",
        ),
        *(
            pytest.param(
                {"provider_config": {"connection_limit_s": value}},
                r"provider_config\['connection_limit_s'\] must be a number of seconds > 0, "
                r"or None",
                id=f"limit-{label}",
            )
            for label, value in (("negative", -5), ("str", "60"), ("abc", "abc"), ("nan", math.nan))
        ),
        *(
            pytest.param(
                {"provider_config": {"go_away_margin_s": value}},
                r"provider_config\['go_away_margin_s'\] must be a number of seconds from 0 to 600",
                id=f"margin-{label}",
            )
            for label, value in (("negative", -1), ("nan", math.nan), ("str", "2"), ("huge", 1e9))
        ),
        pytest.param(
            {"client_config": {"open_timeout": math.nan}},
            r"client_config\['open_timeout'\] must be a number of seconds > 0, or None",
            id="open-timeout-nan",
        ),
        pytest.param(
            {"provider_config": {"inference": {"temperature": math.nan}}},
            r"provider_config\['inference'\] must be JSON data, but it has nan",
            id="inference-nan",
        ),
        pytest.param(
            {"provider_config": {"allow_insecure_transport": "yes"}},
            r"allow_insecure_transport'\] must be a bool",
            id="insecure-str",
        ),
        pytest.param(
            {"provider_config": {"response_modalities": 5}},
            r"'response_modalities' must be \['AUDIO'\] or \['TEXT'\]",
            id="modalities-int",
        ),
        pytest.param(
            {"provider_config": "audio"},
            r"gemini_live provider_config must be a dict \(got 'audio', a str\)",
            id="provider-config-str",
        ),
        pytest.param(
            {"client_config": "key"},
            r"gemini_live client_config must be a dict \(got 'key', a str\)",
            id="client-config-str",
        ),
    ],
)
def test_bad_settings_fail_in_the_constructor(kwargs: dict[str, Any], pattern: str) -> None:
    """A NaN, out-of-range or wrong-typed setting is a ConfigError naming it, before start()."""
    with pytest.raises(ConfigError, match=pattern):
        GeminiLiveModel(**kwargs)


def test_a_negative_limit_cannot_start_a_restart_storm() -> None:
    """connection_limit_s=-5 made a BidiAgent reconnect 1,038 times in 5 s; now it is refused."""
    with pytest.raises(ConfigError, match="connection_limit_s"):
        BidiAgent("gemini_live", provider_config={"connection_limit_s": -5})


def test_get_model_refuses_a_nan_open_timeout() -> None:
    """Through the registry too: open_timeout=NaN used to make start() wait forever."""
    with pytest.raises(ConfigError, match="open_timeout"):
        get_model("gemini_live", client_config={"open_timeout": float("nan")})


def test_valid_margins_and_limits_are_kept() -> None:
    """In-range settings keep working exactly as before."""
    model = GeminiLiveModel(provider_config={"connection_limit_s": 60, "go_away_margin_s": 0})
    assert model.connection_limit_s() == 60.0
    assert (
        GeminiLiveModel(provider_config={"connection_limit_s": None}).connection_limit_s() is None
    )
