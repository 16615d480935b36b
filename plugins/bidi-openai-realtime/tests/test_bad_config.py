"""Every setting is checked in the constructor: type, finite, in range, named in the error."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bidi_core import ConfigError, get_model
from bidi_openai_realtime import OpenAIRealtimeModel


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param(
            {"client_config": {"open_timeout": math.nan}},
            r"client_config\['open_timeout'\] must be a number of seconds > 0 \(got nan\)",
            id="open-timeout-nan",
        ),
        pytest.param(
            {"client_config": {"open_timeout": math.inf}},
            r"client_config\['open_timeout'\] must be a number",
            id="open-timeout-inf",
        ),
        pytest.param(
            {"client_config": {"open_timeout": -1}},
            r"client_config\['open_timeout'\] must be a number of seconds > 0 \(got -1\)",
            id="open-timeout-negative",
        ),
        pytest.param(
            {"client_config": {"max_message_size": True}},
            r"max_message_size'\] must be None \(no limit\) or at least 1 MiB \(got True\)",
            id="max-size-bool",
        ),
        pytest.param(
            {"provider_config": {"audio": {"speed": math.nan}}},
            r"provider_config\['audio'\]\['speed'\] must be a number from 0\.25 to 1\.5",
            id="speed-nan",
        ),
        pytest.param(
            {"provider_config": {"audio": {"speed": 4}}},
            r"\['speed'\] must be a number from 0\.25 to 1\.5 \(got 4\)",
            id="speed-range",
        ),
        pytest.param(
            {"provider_config": {"audio": {"voice": 7}}},
            r"provider_config\['audio'\]\['voice'\] must be a str \(got 7\)",
            id="voice-int",
        ),
        pytest.param(
            {"provider_config": {"inference": {"max_output_tokens": math.inf}}},
            r"provider_config\['inference'\] must be JSON data, but it has inf at "
            r"\['max_output_tokens'\]",
            id="inference-inf",
        ),
        pytest.param(
            {"provider_config": "audio"},
            r"openai_realtime provider_config must be a dict \(got 'audio', a str\)",
            id="provider-config-str",
        ),
        pytest.param(
            {"client_config": "key"},
            r"openai_realtime client_config must be a dict \(got 'key', a str\)",
            id="client-config-str",
        ),
    ],
)
def test_bad_settings_fail_in_the_constructor(kwargs: dict[str, Any], pattern: str) -> None:
    """A NaN, out-of-range or wrong-typed setting is a ConfigError naming it, before start()."""
    with pytest.raises(ConfigError, match=pattern):
        OpenAIRealtimeModel(**kwargs)


def test_get_model_refuses_a_nan_open_timeout() -> None:
    """Through the registry too: open_timeout=NaN used to make start() wait forever."""
    with pytest.raises(ConfigError, match="open_timeout"):
        get_model("openai_realtime", client_config={"open_timeout": float("nan")})
