"""``bidi serve`` security: tokens, origins, loopback binding, and tokens never in logs."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bidi_core import BidiConnectionError, BidiTextInputEvent, ConfigError, get_model
from bidi_core.events import BidiResponseCompleteEvent
from bidi_core.serve import ServeConfig, Token
from bidi_core.serve._limits import RedactTokens, admit, token_from
from bidi_core.serve.testing import gateway

TOKEN = "s3cret-Token-value-42"


async def _status(url: str, **kwargs: Any) -> int:
    try:
        ws = await connect(url, **kwargs)
    except InvalidStatus as exc:
        return int(exc.response.status_code)
    await ws.recv()  # the session message
    await ws.close()
    return 101


async def test_a_token_is_required_when_set() -> None:
    """Missing or wrong tokens get HTTP 401; the right one as header or query opens a session."""
    async with gateway("simulated", token=TOKEN) as gw:
        assert await _status(gw.ws_url) == 401
        assert await _status(gw.ws_url, additional_headers={"Authorization": "Bearer nope"}) == 401
        assert await _status(gw.ws_url + "?token=nope") == 401
        assert await _status(gw.ws_url + "?token=") == 401
        assert (
            await _status(gw.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) == 101
        )
        assert await _status(gw.ws_url + f"?token={TOKEN}") == 101
        assert len(gw.models) == 2  # only the admitted sessions built a model


async def test_the_refusal_says_how_to_send_the_token() -> None:
    """The 401 body tells the client what to do."""
    async with gateway("simulated", token=TOKEN) as gw:
        with pytest.raises(InvalidStatus) as refused:
            await connect(gw.ws_url)
    body = refused.value.response.body.decode()
    assert "Authorization: Bearer" in body
    assert "token" in body


@pytest.mark.parametrize(
    ("origin", "allowed", "status"),
    [
        ("http://evil.example", (), 403),
        ("http://evil.example", ("https://app.example.com",), 403),
        ("https://app.example.com", ("https://app.example.com",), 101),
        ("http://evil.example", ("*",), 101),
        (None, (), 101),  # not a browser
    ],
)
async def test_origins_are_checked(
    origin: str | None, allowed: tuple[str, ...], status: int
) -> None:
    """A browser page from an origin not allowed cannot open a session (HTTP 403)."""
    async with gateway("simulated", allow_origins=allowed) as gw:
        assert await _status(gw.ws_url, origin=origin) == status  # type: ignore[arg-type]


async def test_the_servers_own_origin_is_allowed() -> None:
    """The page served by the gateway itself (same host and port) may connect."""
    async with gateway("simulated") as gw:
        assert await _status(gw.ws_url, origin=gw.url) == 101  # type: ignore[arg-type]


def test_binding_a_non_loopback_address_without_a_token_is_refused() -> None:
    """0.0.0.0 (or any non-loopback host) needs a token; loopback does not."""
    with pytest.raises(ConfigError, match="without a token") as refused:
        ServeConfig(host="0.0.0.0")
    assert "--token" in str(refused.value)
    assert "BIDI_SERVE_TOKEN" in str(refused.value)
    with pytest.raises(ConfigError):
        ServeConfig(host="192.0.2.10")
    ServeConfig(host="0.0.0.0", token=TOKEN)
    for host in ("127.0.0.1", "localhost", "::1", "127.1.2.3"):
        ServeConfig(host=host)


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token checks go through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    token = Token(TOKEN)
    assert token.matches(TOKEN)
    assert not token.matches("x")
    assert not token.matches(None)
    assert len(calls) == 2


def test_the_token_never_shows_in_repr_or_config() -> None:
    """repr(ServeConfig), repr(Token) and str(Token) hide the value."""
    config = ServeConfig(token=TOKEN, host="0.0.0.0")
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config.token)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(config.token)


def test_token_from_reads_the_header_then_the_query() -> None:
    """Authorization: Bearer wins; else the token query parameter; else None."""
    assert token_from({"authorization": "Bearer abc"}, b"token=def") == "abc"
    assert token_from({"authorization": "Basic abc"}, b"token=def") == "def"
    assert token_from({}, b"a=1&token=x%2By") == "x+y"
    assert token_from({}, b"") is None


def test_a_twilio_token_may_come_later_but_a_wrong_one_is_refused_now() -> None:
    """token_later lets a missing token through (Twilio's start message), never a wrong one."""
    config = ServeConfig(token=TOKEN)
    assert admit(config, {}, b"", token_later=True) is None
    refusal = admit(config, {}, b"token=wrong", token_later=True)
    assert refusal is not None
    assert refusal.status == 401


async def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A whole session with the token in the query string logs it nowhere (DEBUG, all loggers)."""
    caplog.set_level(logging.DEBUG)
    # This test's own bare client (websockets.client) prints its request line; the
    # remote model and the server are what must not.
    logging.getLogger("websockets.client").setLevel(logging.WARNING)
    async with gateway("simulated", token=TOKEN) as gw:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        ws = await connect(gw.ws_url + f"?token={TOKEN}")
        await ws.recv()
        await ws.close()
        assert await _status(gw.ws_url + "?token=wrong-guess") == 401
        model = gw.remote_model()
        await model.start()
        await model.send(BidiTextInputEvent(text="hi"))
        async for event in model.receive():
            if isinstance(event, BidiResponseCompleteEvent):
                break
        await model.stop()
        assert TOKEN not in repr(model)
        assert TOKEN not in repr(model.config)
    logging.getLogger("websockets.client").setLevel(logging.NOTSET)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "WebSocket" in text  # uvicorn did log the sessions...
    assert "Authorization: Bearer ***" in text  # ...and the remote model its headers...
    assert TOKEN not in text  # ...without the token
    assert "wrong-guess" not in text


def test_the_redaction_filter_masks_query_tokens() -> None:
    """RedactTokens rewrites token=... in a record, and the secret anywhere."""
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s"',
        ("1.2.3.4", "/v1?token=abc&x=1"),
        None,
    )
    RedactTokens("zzz").filter(record)
    assert record.getMessage() == '1.2.3.4 - "WebSocket /v1?token=***&x=1"'


def test_the_remote_model_refuses_plain_ws_to_other_hosts() -> None:
    """ws:// to a non-loopback host needs allow_insecure; the token never goes in the URL."""
    with pytest.raises(ConfigError, match="plain-text"):
        get_model("remote", client_config={"url": "ws://gateway.example.com/v1/session"})
    get_model(
        "remote",
        client_config={"url": "ws://gateway.example.com/v1/session", "allow_insecure": True},
    )
    get_model("remote", client_config={"url": "wss://gateway.example.com/v1/session"})
    get_model("remote", client_config={"url": "ws://127.0.0.1:8765/v1/session"})
    with pytest.raises(ConfigError, match="not in the URL"):
        get_model("remote", client_config={"url": "ws://127.0.0.1/v1/session?token=x"})
    with pytest.raises(ConfigError, match="needs client_config\\['url'\\]"):
        get_model("remote")
    with pytest.raises(ConfigError, match="Did you mean 'token'"):
        get_model("remote", client_config={"url": "ws://127.0.0.1/v1/session", "tokn": "x"})


async def test_the_remote_model_says_why_the_gateway_refused_it() -> None:
    """A wrong token surfaces as a BidiConnectionError with the 401 and a hint."""
    async with gateway("simulated", token=TOKEN) as gw:
        model = gw.remote_model(token="not-it")
        with pytest.raises(BidiConnectionError, match="HTTP 401") as refused:
            await model.start()
    assert "client_config['token']" in str(refused.value)
    assert "not-it" not in str(refused.value)
