"""Running the gateway with uvicorn: in the foreground (``bidi serve``) or in a task.

:func:`serving` runs the app inside the caller's event loop on 127.0.0.1 (tests,
benchmarks, notebooks); :func:`run` is what ``bidi serve`` calls, with uvicorn's
worker processes for ``--workers N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from ._config import ServeConfig
from ._limits import install_redaction

__all__ = ["install_redaction", "listening_socket", "run", "serving", "uvicorn_config"]


def uvicorn_config(app: Any, config: ServeConfig, **overrides: Any) -> uvicorn.Config:
    """The uvicorn settings every ``bidi serve`` runs with.

    The WebSocket implementation is websockets' sans-I/O one; ``ws_max_size`` makes a
    message over ``max_message_bytes`` close the socket with 1009; the access log is
    off (its lines carry query strings, where browsers put the token).
    """
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "ws": "websockets-sansio",
        "ws_max_size": config.max_message_bytes,
        "ws_per_message_deflate": False,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections get ``TCP_NODELAY``.

    asyncio sets ``TCP_NODELAY`` only on sockets whose ``proto`` is ``IPPROTO_TCP``; a
    socket made with ``proto=0`` hands that on to every accepted connection, and Nagle's
    algorithm then holds each audio frame until the client's (delayed) ACK: 10-20 ms
    added to a real-time stream whenever the client is sending too.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(
    app: Any, config: ServeConfig | None = None, *, port: int = 0
) -> AsyncIterator[str]:
    """Run *app* with uvicorn in this event loop until the block ends.

    Binds 127.0.0.1 (a free port unless *port* is given) and yields the base URL,
    e.g. ``"http://127.0.0.1:54321"``. Logging is left as the caller set it up.

    Example::

        app = create_app(ServeConfig(model="simulated"))
        async with serving(app) as url:
            ws_url = url.replace("http", "ws") + "/v1/session"
            model = get_model("remote", client_config={"url": ws_url})
    """
    config = config or app.state.bidi.config
    install_redaction(config)
    sock = listening_socket("127.0.0.1", port)
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, config, log_config=None, lifespan="off"))
    # uvicorn would otherwise take over SIGINT/SIGTERM of the host program.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="bidi-serve-uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise why
                msg = "uvicorn stopped before it started"
                raise RuntimeError(msg)
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=15)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            sock.close()


def run(config: ServeConfig, app: Any = None) -> None:
    """Serve *config* in the foreground until interrupted (what ``bidi serve`` does).

    Args:
        config: What to serve.
        app: The app built from *config* (else built here); ignored with workers,
            which build their own.
    """
    install_redaction(config)
    if config.workers > 1:
        # Each worker is a fresh process: it rebuilds the configuration from the
        # environment (the token travels in BIDI_SERVE_TOKEN, never on a command line).
        os.environ.update(config.to_env())
        uvicorn.run(
            "bidi_core.serve._app:app_from_env",
            factory=True,
            workers=config.workers,
            **_run_options(config),
        )
        return
    if app is None:
        from ._app import create_app  # noqa: PLC0415 - _app imports this module lazily too

        app = create_app(config)
    server = uvicorn.Server(uvicorn_config(app, config))
    server.run()


def _run_options(config: ServeConfig) -> dict[str, Any]:
    built = uvicorn_config("unused:app", config)
    return {
        "host": built.host,
        "port": built.port,
        "ws": built.ws,
        "ws_max_size": built.ws_max_size,
        "ws_per_message_deflate": built.ws_per_message_deflate,
        "access_log": built.access_log,
        "proxy_headers": built.proxy_headers,
        "server_header": built.server_header,
        "timeout_graceful_shutdown": built.timeout_graceful_shutdown,
    }
