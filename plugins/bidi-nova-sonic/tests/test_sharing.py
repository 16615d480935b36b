"""What the sessions of one process share (one HTTP/2 connection, one default boto3 session)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import Reader

from bidi_core import BidiModelTimeoutError, BidiTranscriptStreamEvent
from bidi_nova_sonic import NovaSonicModel
from bidi_nova_sonic import _transport as transport
from bidi_nova_sonic.testing import FakeNovaServer

Factory = Callable[..., NovaSonicModel]


def _final_texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]


async def test_sessions_share_one_connection_and_fail_alone(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Two sessions ride one HTTP/2 connection; a stream exception ends only its own session."""
    first, second = make_model(), make_model()
    await first.start()
    await second.start()
    assert len(fake._peers) == 1  # one TCP/TLS connection ...
    assert len(fake.requests) == 2  # ... carrying both streams
    first_reader, second_reader = Reader(first), Reader(second)
    await fake.inject_exception("modelTimeoutException", "Model has timed out.")  # the newest
    with pytest.raises(BidiModelTimeoutError):
        await second_reader.until(lambda e: False)
    assert _final_texts(await first_reader.turn("still here")) == ["You said: still here."]
    await second_reader.aclose()
    await second.stop()
    assert _final_texts(await first_reader.turn("and now")) == ["You said: and now."]
    await first_reader.aclose()
    await first.stop()
    assert transport._connections == {}  # closed with its last user
    assert fake.protocol_errors == []


async def test_the_connection_closes_with_its_last_session(
    fake: FakeNovaServer, make_model: Factory
) -> None:
    """Stopping every session releases the shared connection; the next one opens a new one."""
    model = make_model()
    await model.start()
    await model.stop()
    assert transport._connections == {}
    await model.start()
    reader = Reader(model)
    assert _final_texts(await reader.turn("again")) == ["You said: again."]
    await reader.aclose()
    await model.stop()
    assert transport._connections == {}


def test_models_without_a_session_share_the_default_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """One boto3 session per region and credential environment, not one per model."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSHARED")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shared-secret")
    first = transport.default_session("us-east-1")
    assert transport.default_session("us-east-1") is first
    assert transport.default_session("eu-west-1") is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDOTHER")
    other = transport.default_session("us-east-1")
    assert other is not first
    assert other.get_credentials().access_key == "AKIDOTHER"
