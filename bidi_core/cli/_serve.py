"""``bidi serve``: the browser and phone gateway (``pip install 'bidi-core[serve]'``).

The parser is plain argparse; Starlette and uvicorn are imported only when the
command runs, after the configuration has been checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from .._errors import BidiError

__all__ = ["add_serve_parser", "banner", "run_serve", "serve_config"]

_DESCRIPTION = """\
Serve a model to browsers and phones: every WebSocket connection is one BidiAgent
session with this server's model, tools and system prompt (a client never chooses
credentials, endpoints or tools).

  GET /            a page that talks through the microphone (open it in a browser)
  WS  /v1/session  the session protocol (JSON text frames, PCM16 binary frames);
                   also what get_model("remote", client_config={"url": ...}) speaks
  WS  /v1/twilio   Twilio Media Streams (8 kHz mu-law); the TwiML is printed at start
  GET /healthz     for load balancers

Security: it binds 127.0.0.1 unless told otherwise, and any other address needs a
token (--token or BIDI_SERVE_TOKEN), sent by clients as 'Authorization: Bearer' or
a 'token' query parameter (the page reads it from its address: /#token=...).
Browser pages from other origins are refused unless --allow-origin names them.
"""


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to the ``bidi`` parser's subparsers."""
    serve = sub.add_parser(
        "serve",
        help="serve a model to browsers and phones (WebSocket gateway, bidi-core[serve])",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--model",
        help="registry name (default: the first provider with credentials, else 'simulated')",
    )
    serve.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model setting, as in bidi chat, e.g. --set provider_config.audio.voice=alloy",
    )
    serve.add_argument(
        "--tool",
        dest="tools",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a function every session's model may call (repeatable)",
    )
    serve.add_argument(
        "--system-prompt", "--system", dest="system", help="every session's instructions"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="uvicorn worker processes (default 1)"
    )
    serve.add_argument(
        "--token",
        help="the token clients must send (default: $BIDI_SERVE_TOKEN; required off loopback)",
    )
    serve.add_argument(
        "--allow-origin",
        dest="origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed besides this server's own, e.g. https://app.example.com "
        "('*' for any; repeatable)",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=100, help="concurrent sessions per worker (100)"
    )
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=2**20,
        help="largest WebSocket message; a larger one closes the session with 1009 (1 MiB)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="close a session whose client sent nothing for this long (120)",
    )
    return serve  # type: ignore[no-any-return]


def serve_config(args: argparse.Namespace, *, environ: dict[str, str] | None = None) -> Any:
    """Build the :class:`~bidi_core.serve.ServeConfig` of ``bidi serve``'s arguments.

    Raises:
        ConfigError: A bad setting, or a non-loopback host without a token.
    """
    from .._registry import default_registry  # noqa: PLC0415
    from ..serve._config import TOKEN_ENV, ServeConfig  # noqa: PLC0415 - no server stack
    from ._chat import choose_model, parse_settings  # noqa: PLC0415

    env = os.environ if environ is None else environ
    name, _ = choose_model(default_registry(), args.model, fake=False)
    return ServeConfig(
        model=name,
        model_kwargs=parse_settings(args.settings),
        tools=tuple(args.tools),
        system_prompt=args.system,
        host=args.host,
        port=args.port,
        workers=args.workers,
        token=args.token or env.get(TOKEN_ENV) or None,
        allow_origins=tuple(args.origins),
        max_sessions=args.max_sessions,
        max_message_bytes=args.max_message_bytes,
        idle_timeout_s=args.idle_timeout,
    )


def banner(config: Any, out: TextIO) -> None:
    """Say where the server listens, how to reach it, and the TwiML for phones."""
    from ..serve._twilio import twiml  # noqa: PLC0415

    host = f"[{config.host}]" if ":" in config.host else config.host
    base = f"http://{host}:{config.port}"
    out.write(f"bidi serve: model {config.model!r}, listening on {base}\n")
    if config.token is not None:
        out.write("  token: required (its value is never printed or logged)\n")
        out.write(f"  browser: open {base}/#token=<your token>\n")
    else:
        out.write(f"  browser: open {base}/  (microphone pages need localhost or https)\n")
    out.write(
        f"  sessions: ws://{host}:{config.port}/v1/session  (the 'remote' model's url)\n"
        f"  limits: {config.max_sessions} sessions per worker x {config.workers} worker(s), "
        f"{config.max_message_bytes} bytes per message, {config.idle_timeout_s:g} s idle\n"
        "  phone: put the server behind TLS on a public host, then answer Twilio calls with:\n"
    )
    snippet = twiml(
        "wss://YOUR-PUBLIC-HOST/v1/twilio",
        token_placeholder="YOUR_TOKEN" if config.token is not None else None,
    )
    out.write("".join(f"    {line}\n" for line in snippet.splitlines()))


def run_serve(args: argparse.Namespace) -> int:
    """Entry point of ``bidi serve``."""
    try:
        config = serve_config(args)
        from ..serve import create_app, run  # noqa: PLC0415 - Starlette and uvicorn load here

        app = create_app(config)  # fails now on a bad model, setting or tool
        banner(config, sys.stdout)
        sys.stdout.flush()
        run(config, app)
    except KeyboardInterrupt:
        return 130
    except BidiError as exc:
        sys.stderr.write(f"bidi serve: {exc}\n")
        return 1
    return 0
