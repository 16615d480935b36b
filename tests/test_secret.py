"""bidi_core.Secret: a credential that never shows itself by accident."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from bidi_core import Secret


def test_repr_str_and_format_hide_the_value() -> None:
    key = Secret("sk-live-123")
    assert "sk-live-123" not in repr(key)
    assert str(key) == "***"
    assert f"{key}" == "***"
    assert f"{key:>5}" == "  ***"
    assert "sk-live-123" not in repr({"api_key": key})


def test_reveal_gives_the_plaintext_and_secrets_compare_by_value() -> None:
    key = Secret("abc")
    assert key.reveal() == "abc"
    assert Secret(key).reveal() == "abc"
    assert key == Secret("abc")
    assert key != Secret("abd")
    assert key != "abc"  # a Secret never equals its plaintext: no accidental comparisons
    assert hash(key) == hash(Secret("abc"))
    assert bool(Secret("")) is False
    assert len(key) == 3


def test_vars_cannot_reach_the_value_and_it_cannot_be_changed() -> None:
    key = Secret("abc")
    with pytest.raises(TypeError):
        vars(key)
    with pytest.raises(AttributeError, match="cannot be changed"):
        key._value = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot be changed"):
        del key._value


def test_copies_keep_the_value() -> None:
    key = Secret("abc")
    assert copy.deepcopy(key).reveal() == "abc"
    assert pickle.loads(pickle.dumps(key)).reveal() == "abc"


def test_a_non_str_value_is_refused_naming_its_type() -> None:
    with pytest.raises(TypeError, match="got bytes"):
        Secret(b"abc")  # type: ignore[arg-type]


def test_logging_a_secret_shows_stars(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("bidi-test").info("key is %s (%r)", Secret("abc123"), Secret("abc123"))
    assert "abc123" not in caplog.text
    assert "***" in caplog.text
