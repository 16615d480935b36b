"""Shared test configuration: hypothesis profiles and a fresh registry per test.

Property tests run 100 examples each by default (the ``ci`` profile). Run them harder
with ``HYPOTHESIS_PROFILE=thorough`` (1,000 examples), e.g.
``HYPOTHESIS_PROFILE=thorough ./dev nox -s tests -- -k property``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from bidi_core import Registry

# No deadline: these machines are noisy and tests never assert a time.
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def registry() -> Registry:
    """A registry that loads no entry points: tests register fake plugins on it."""
    return Registry(autoload=False)
