"""Every setting is checked in the constructor: type, finite, in range, named in the error."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bidi_core import ConfigError
from bidi_example import ExampleModel


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param({"model_id": 123}, r"example model_id must be a non-empty str", id="model-id"),
        pytest.param(
            {"provider_config": {"connection_limit_s": math.nan}},
            r"provider_config\['connection_limit_s'\] must be a number of seconds > 0, or None",
            id="limit-nan",
        ),
        pytest.param(
            {"client_config": {"connect_timeout": "10"}},
            r"client_config\['connect_timeout'\] must be a number of seconds > 0 \(got '10'\)",
            id="connect-timeout-str",
        ),
        pytest.param(
            {"client_config": {"open_timeout": math.nan}},
            r"client_config\['open_timeout'\] must be a number of seconds > 0, or None",
            id="open-timeout-nan",
        ),
        pytest.param(
            {"client_config": {"port": 70000}},
            r"client_config\['port'\] must be an int from 1 to 65535 \(got 70000\)",
            id="port-range",
        ),
        pytest.param(
            {"provider_config": {"voice": 3}}, r"\['voice'\] must be a str or None", id="voice"
        ),
        pytest.param(
            {"provider_config": "voice"},
            r"example provider_config must be a dict \(got 'voice', a str\)",
            id="provider-config-str",
        ),
    ],
)
def test_bad_settings_fail_in_the_constructor(kwargs: dict[str, Any], pattern: str) -> None:
    """A NaN, out-of-range or wrong-typed setting is a ConfigError naming it, before start()."""
    with pytest.raises(ConfigError, match=pattern):
        ExampleModel(**kwargs)
