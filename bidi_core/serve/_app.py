"""The ASGI application of ``bidi serve`` (Starlette): page, session and phone endpoints.

Routes:

* ``GET /``: the browser page (static HTML and JS shipped in the wheel, from this
  server only); ``GET /static/<file>``: its scripts and worklets.
* ``GET /healthz``: ``{"status": "ok", "sessions": n, "max_sessions": m}`` for load
  balancers.
* ``WS /v1/session``: one ``BidiAgent`` per connection (:mod:`._session`).
* ``WS /v1/twilio``: a phone call over Twilio Media Streams (:mod:`._twilio`).

Every WebSocket is admitted before it is accepted: its ``Origin`` must be allowed, its
token right (when one is set) and a session slot free; otherwise the upgrade is
answered with HTTP 403, 401 or 503 and a sentence saying why.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .._protocol import BidiModel
from .._registry import Registry, default_registry
from ..agent import BidiAgent
from ._config import ServeConfig
from ._limits import Admission, SessionSlots, admit, install_redaction
from ._session import ClientSession
from ._twilio import TwilioSession

__all__ = ["STATIC_FILES", "app_from_env", "create_app"]

logger = logging.getLogger("bidi_core.serve")

#: The page's files and their content types (all in ``bidi_core/serve/static``).
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "capture-worklet.js": "text/javascript; charset=utf-8",
    "playback-worklet.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Nothing from another host: scripts, styles and sockets come from this server only.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load_static() -> dict[str, bytes]:
    root = importlib.resources.files(__package__ or "bidi_core.serve") / "static"
    return {name: (root / name).read_bytes() for name in STATIC_FILES}


@attrs.define
class _State:
    config: ServeConfig
    make_model: Callable[[], BidiModel]
    tools: list[Callable[..., Any]]
    slots: SessionSlots
    static: dict[str, bytes]

    def new_agent(self) -> BidiAgent:
        return BidiAgent(
            self.make_model(), tools=self.tools, system_prompt=self.config.system_prompt
        )


def create_app(
    config: ServeConfig,
    *,
    model_factory: Callable[[], BidiModel] | None = None,
    registry: Registry | None = None,
    tools: Sequence[Callable[..., Any]] = (),
) -> Starlette:
    """Build the ASGI app serving *config*.

    The model is built once here (constructors do no I/O), so an unknown model name,
    a bad ``--set`` or a missing tool fails now, not at the first call.

    Args:
        config: What every session runs and the server's limits.
        model_factory: Builds each session's model instead of
            ``registry.get_model(config.model, **config.model_kwargs)`` (tests use it
            to reach a fake, or to inspect the models).
        registry: Where ``config.model`` is looked up (default: the installed plugins).
        tools: Functions every session's agent may call, besides ``config.tools``.

    Raises:
        UnknownModelError: No installed model has that name.
        ConfigError: The model refuses its settings.
        ToolError: A ``--tool`` cannot be imported.
    """
    from ..cli._chat import load_tool  # noqa: PLC0415 - the CLI's own --tool loader

    all_tools = [load_tool(spec) for spec in config.tools] + list(tools)
    if model_factory is None:
        chosen = registry or default_registry()

        def model_factory() -> BidiModel:
            return chosen.get_model(config.model, **config.model_kwargs)

    model_factory()  # validate the settings now
    state = _State(
        config=config,
        make_model=model_factory,
        tools=all_tools,
        slots=SessionSlots(config.max_sessions),
        static=_load_static(),
    )
    routes = [
        Route("/", _index),
        Route("/static/{name}", _static),
        Route("/healthz", _health),
        Route("/favicon.ico", _no_icon),
        WebSocketRoute("/v1/session", _session),
        WebSocketRoute("/v1/twilio", _twilio),
    ]
    app = Starlette(routes=routes)
    app.state.bidi = state
    return app


def app_from_env() -> Starlette:
    """The app of one ``bidi serve --workers N`` worker (configuration from the environment)."""
    config = ServeConfig.from_env()
    install_redaction(config)
    return create_app(config)


def _state(conn: Request | WebSocket) -> _State:
    state: _State = conn.app.state.bidi
    return state


async def _index(request: Request) -> Response:
    return _static_response(_state(request), "index.html")


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES or name == "index.html":
        return PlainTextResponse("Not found.", status_code=404)
    return _static_response(_state(request), name)


def _static_response(state: _State, name: str) -> Response:
    return Response(state.static[name], media_type=STATIC_FILES[name], headers=_PAGE_HEADERS)


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


async def _health(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {"status": "ok", "sessions": state.slots.active, "max_sessions": state.slots.limit}
    )


async def _deny(ws: WebSocket, refusal: Admission) -> None:
    logger.info("refused a WebSocket: %s %s", refusal.status, refusal.reason)
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(PlainTextResponse(refusal.reason, status_code=refusal.status))
    else:  # the server answers a close before accept with HTTP 403
        await ws.close(code=1008, reason=refusal.reason[:120])


def _headers(ws: WebSocket) -> dict[str, str]:
    return {k.lower(): v for k, v in ws.headers.items()}


class _StarletteTransport:
    """A Starlette WebSocket as a session :class:`~._session.Transport`."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws

    async def receive(self) -> str | bytes | None:
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data: bytes | None = message.get("bytes")
        if data is not None:
            return data
        text: str | None = message.get("text")
        return text if text is not None else b""

    async def send_text(self, text: str) -> None:
        await self._ws.send_text(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        if self._ws.application_state is not WebSocketState.DISCONNECTED:
            await self._ws.close(code=code, reason=reason)


async def _admitted(ws: WebSocket, *, token_later: bool = False) -> bool:
    state = _state(ws)
    refusal = admit(
        state.config, _headers(ws), ws.scope.get("query_string", b""), token_later=token_later
    )
    if refusal is None and not state.slots.acquire():
        refusal = Admission(
            503,
            f"The server is at its limit of {state.slots.limit} sessions; try again later "
            "or another server.",
        )
    if refusal is not None:
        await _deny(ws, refusal)
        return False
    return True


async def _session(ws: WebSocket) -> None:
    state = _state(ws)
    if not await _admitted(ws):
        return
    try:
        await ws.accept()
        session = ClientSession(
            _StarletteTransport(ws), state.new_agent(), state.config, model=state.config.model
        )
        logger.info("session %s: opened", session.id)
        await session.run()
        logger.info("session %s: closed", session.id)
    finally:
        state.slots.release()


async def _twilio(ws: WebSocket) -> None:
    state = _state(ws)
    config = state.config
    if not await _admitted(ws, token_later=True):
        return
    try:
        await ws.accept()
        given = admit(config, _headers(ws), ws.scope.get("query_string", b"")) is None
        session = TwilioSession(
            _StarletteTransport(ws),
            state.new_agent(),
            config,
            model=config.model,
            token_checked=config.token is None or given,
        )
        await session.run()
    finally:
        state.slots.release()
