"""Shared test configuration: the bidi hypothesis profiles (ci 100 examples, thorough 1,000)."""

from __future__ import annotations

from bidi_core.testing.fuzz import load_hypothesis_profile

load_hypothesis_profile()
