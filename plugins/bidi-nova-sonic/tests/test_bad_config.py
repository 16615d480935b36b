"""Every setting is checked in the constructor: type, finite, in range, named in the error."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bidi_core import ConfigError, get_model
from bidi_nova_sonic import NovaSonicModel


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param(
            {"client_config": {"open_timeout": math.nan}},
            r"nova_sonic client_config\['open_timeout'\] must be a number of seconds > 0, "
            r"or None \(got nan\)",
            id="open-timeout-nan",
        ),
        pytest.param(
            {"client_config": {"open_timeout": "5"}},
            r"client_config\['open_timeout'\] must be a number .*\(got '5'\)",
            id="open-timeout-str",
        ),
        pytest.param(
            {"provider_config": {"connection_limit_s": math.inf}},
            r"connection_limit_s must be a number of seconds > 0, or None \(got inf\)",
            id="limit-inf",
        ),
        pytest.param(
            {"provider_config": {"inference": {"temperature": math.nan}}},
            r"nova_sonic provider_config\['inference'\] must be JSON data, but it has nan",
            id="inference-nan",
        ),
        pytest.param(
            {"provider_config": {"session": {"x": math.inf}}},
            r"provider_config\['session'\] must be JSON data",
            id="session-inf",
        ),
        pytest.param(
            {"provider_config": "audio"},
            r"nova_sonic provider_config must be a dict \(got 'audio', a str\)",
            id="provider-config-str",
        ),
        pytest.param(
            {"client_config": "us-east-1"},
            r"nova_sonic client_config must be a dict \(got 'us-east-1', a str\)",
            id="client-config-str",
        ),
        pytest.param(
            {"client_config": {"regoin": "us-east-1"}},
            r"Unknown key 'regoin' in nova_sonic client_config\. Did you mean 'region'\?",
            id="client-key-typo",
        ),
    ],
)
def test_bad_settings_fail_in_the_constructor(kwargs: dict[str, Any], pattern: str) -> None:
    """A NaN, wrong-typed or unknown setting is a ConfigError naming it, before start()."""
    with pytest.raises(ConfigError, match=pattern):
        NovaSonicModel(**kwargs)


def test_get_model_refuses_a_nan_open_timeout() -> None:
    """Through the registry too: open_timeout=NaN used to make start() wait forever."""
    with pytest.raises(ConfigError, match="open_timeout"):
        get_model("nova_sonic", client_config={"open_timeout": float("nan")})
