"""Shared test configuration: hypothesis profiles and a fresh registry per test.

Property tests run 100 examples each by default (the ``ci`` profile). Run them harder
with ``HYPOTHESIS_PROFILE=thorough`` (1,000 examples), e.g.
``HYPOTHESIS_PROFILE=thorough ./dev nox -s tests -- -k property``.
"""

from __future__ import annotations

import pytest

from bidi_core import Registry
from bidi_core.testing.fuzz import load_hypothesis_profile

# No deadline: these machines are noisy and tests never assert a time.
load_hypothesis_profile()


@pytest.fixture
def registry() -> Registry:
    """A registry that loads no entry points: tests register fake plugins on it."""
    return Registry(autoload=False)
