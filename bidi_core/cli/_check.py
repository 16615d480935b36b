"""``bidi check MODEL``: a first-contact doctor for one model.

Steps, one line each with a verdict (``ok``, ``FAIL``, ``skip``) and the fix:

1. ``config``: the registry knows the model and ``get_model()`` accepts the settings.
2. ``credentials``: which credentials the model would use (their source, never a value).
3. ``dns``: the endpoint's host name resolves.
4. ``tls``: a TLS connection to it verifies the certificate (``connect`` without TLS).
5. ``session``: with credentials, a session is opened and closed (``start()``/``stop()``).

The provider-specific facts (endpoint, credential source) come from the plugin's
``check=`` hook (:mod:`bidi_core.diagnostics`); without one, steps 3-4 are skipped.
The whole check is bounded by ``--timeout`` (15 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import attrs

from .._errors import AuthenticationError, BidiError, MissingCredentialsError, PluginLoadError
from .._registry import ModelInfo, Registry, default_registry
from ..diagnostics import CheckInfo, Credentials, Endpoint
from ._chat import parse_settings
from ._errors import one_line

__all__ = ["Step", "check", "run_check"]

#: Longest a single network step (DNS, TLS) may take within the overall bound.
_STEP_S = 5.0
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


@attrs.frozen(kw_only=True)
class Step:
    """One line of ``bidi check``: the step, its verdict, what was found and the fix."""

    name: str
    verdict: str  # "ok", "FAIL" or "skip"
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The step as one line."""
        text = " ".join(
            f"{self.detail} Fix: {self.fix}".split() if self.fix else self.detail.split()
        )
        return f"{self.verdict:<4}  {self.name:<11}  {text}"


def _load_hook(spec: Any) -> Callable[..., Any]:
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    module_name, _, attr = str(spec).partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        msg = f"The plugin's check hook {spec!r} cannot be loaded ({exc}); reinstall the plugin."
        raise PluginLoadError(msg) from exc
    if not callable(hook):
        msg = f"The plugin's check hook {spec!r} is not callable; reinstall the plugin."
        raise PluginLoadError(msg)
    return hook  # type: ignore[no-any-return]


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run *func* in a daemon thread (a hung credential probe never holds up the exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            outcome = (True, func(*args))
        except BaseException as exc:  # handed to the loop, never lost
            outcome = (False, exc)
        # If the check gave up on it and its loop is closed, the outcome is dropped.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="bidi-check", daemon=True).start()
    return await future


def _secrets(info: ModelInfo, settings: dict[str, Any]) -> list[str]:
    """Values that must never be printed: secret env vars the plugin reads, secret --set values."""
    names = [str(n) for n in info.extra.get("env_vars") or ()]
    found = [os.environ.get(n, "") for n in names if _SECRET_NAME.search(n)]

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, str) and _SECRET_NAME.search(key):
            found.append(value)

    walk(settings)
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


class _Doctor:
    """Runs the steps against a deadline and prints each as it finishes."""

    def __init__(self, out: TextIO, timeout: float, secrets: list[str]) -> None:
        self.out = out
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.secrets = secrets
        self.steps: list[Step] = []

    def left(self, cap: float | None = None) -> float:
        remaining = max(0.0, self.deadline - time.monotonic())
        return remaining if cap is None else min(cap, remaining)

    def emit(self, name: str, verdict: str, detail: str, fix: str = "") -> None:
        step = Step(name=name, verdict=verdict, detail=detail, fix=fix)
        line = step.line()
        for secret in self.secrets:
            line = line.replace(secret, "***")
        self.steps.append(step)
        self.out.write(line + "\n")
        self.out.flush()

    @property
    def failed(self) -> bool:
        return any(step.verdict == "FAIL" for step in self.steps)

    async def credentials(self, info: ModelInfo, model: Any) -> CheckInfo | None:
        spec = info.extra.get("check")
        if spec is None:
            found = _plugin_says(info)
            source = "the plugin's credentials check" if found else "nowhere the plugin says"
            return CheckInfo(
                endpoint=None,
                credentials=Credentials(
                    found=found is not False,
                    source=source,
                    fix="see the plugin's README for what to set",
                ),
            )
        hook = _load_hook(spec)
        async with asyncio.timeout(self.left()):
            result = await _in_thread(hook, model)
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, CheckInfo):
            msg = (
                f"The plugin's check hook {spec!r} returned {type(result).__name__}, not CheckInfo."
            )
            raise PluginLoadError(msg)
        return result

    async def dns(self, endpoint: Endpoint) -> tuple[Any, ...] | None:
        loop = asyncio.get_running_loop()
        where = f" (from {endpoint.source})" if endpoint.source else ""
        try:
            async with asyncio.timeout(self.left(_STEP_S)):
                infos = await loop.getaddrinfo(
                    endpoint.host, endpoint.port, type=socket.SOCK_STREAM
                )
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            self.emit(
                "dns",
                "FAIL",
                f"cannot resolve {endpoint.host!r}{where}: {reason}.",
                "check the host name, your network connection and DNS; behind a proxy "
                "set HTTPS_PROXY.",
            )
            return None
        sockaddr: tuple[Any, ...] = infos[0][4]
        self.emit("dns", "ok", f"{endpoint.host} -> {sockaddr[0]}{where}")
        return sockaddr

    async def connect(self, endpoint: Endpoint, sockaddr: tuple[Any, ...]) -> bool:
        name = "tls" if endpoint.tls else "connect"
        context: ssl.SSLContext | None = None
        if endpoint.tls:
            context = endpoint.ssl_context or ssl.create_default_context()
            if endpoint.alpn:
                context.set_alpn_protocols(list(endpoint.alpn))
        family = socket.AF_INET6 if ":" in str(sockaddr[0]) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        writer = None
        try:
            async with asyncio.timeout(self.left(_STEP_S)):
                await asyncio.get_running_loop().sock_connect(sock, sockaddr)
                _, writer = await asyncio.open_connection(
                    sock=sock,
                    ssl=context,
                    server_hostname=endpoint.host if context else None,
                )
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            self.emit(
                name,
                "FAIL",
                f"the certificate of {endpoint.host} is not trusted ({exc.verify_message}).",
                endpoint.trust_fix,
            )
            return False
        except (OSError, TimeoutError) as exc:
            sock.close()
            reason = str(exc) or type(exc).__name__
            self.emit(
                name,
                "FAIL",
                f"cannot connect to {endpoint.host}:{endpoint.port}: {reason}.",
                "check your network, firewall or proxy.",
            )
            return False
        detail = f"{endpoint.host}:{endpoint.port} reached"
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            detail += f", certificate verified ({ssl_object.version()}"
            detail += f", ALPN {alpn})" if alpn else ")"
        writer.close()
        try:
            async with asyncio.timeout(self.left(1.0)):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        self.emit(name, "ok", detail)
        return True

    async def session(self, model: Any, credentials: Credentials) -> None:
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.left()):
                await model.start()
        except TimeoutError:
            self.emit(
                "session",
                "FAIL",
                f"no session within the check's {self.timeout:g} s.",
                "retry; on a slow network pass a larger --timeout.",
            )
            return
        except AuthenticationError as exc:
            self.emit("session", "FAIL", one_line(exc), credentials.fix)
            return
        except Exception as exc:
            self.emit("session", "FAIL", one_line(exc))
            return
        took = time.monotonic() - began
        try:
            async with asyncio.timeout(max(self.left(), 0.5)):
                await model.stop()
        except TimeoutError:
            pass
        self.emit("session", "ok", f"opened and closed a session ({took:.2f} s to open).")


def _model_id(model: object) -> str:
    return str(getattr(model, "model_id", "?"))


def _plugin_says(info: ModelInfo) -> bool | None:
    from ._models import credentials_found  # noqa: PLC0415

    return credentials_found(info)


async def check(
    name: str,
    settings: dict[str, Any],
    *,
    registry: Registry | None = None,
    limit_s: float = 15.0,
    out: TextIO | None = None,
) -> list[Step]:
    """Run every step for model *name* built with *settings*; print and return them.

    Args:
        name: The registry name.
        settings: ``get_model()`` keywords (what ``--set`` gives).
        registry: Where to find the model (default: the process-wide registry).
        limit_s: Bound on the whole check, in seconds.
        out: Where the lines go (default stdout).
    """
    registry = registry or default_registry()
    out = out or sys.stdout
    try:
        info = registry.model_info(name)
    except BidiError as exc:
        doctor = _Doctor(out, limit_s, [])
        doctor.emit("config", "FAIL", one_line(exc))
        return doctor.steps
    doctor = _Doctor(out, limit_s, _secrets(info, settings))
    origin = f"{info.distribution or info.plugin} {info.version or ''}".strip()
    try:
        model = registry.get_model(name, **settings)
    except Exception as exc:
        doctor.emit("config", "FAIL", one_line(exc))
        return doctor.steps
    try:
        facts = await doctor.credentials(info, model)
    except MissingCredentialsError as exc:  # e.g. no region: it names what to set
        doctor.emit("config", "ok", f"{name} ({origin}), model {_model_id(model)}")
        doctor.emit("credentials", "FAIL", one_line(exc))
        return doctor.steps
    except TimeoutError:
        doctor.emit("config", "ok", f"{name} ({origin}), model {_model_id(model)}")
        doctor.emit(
            "credentials",
            "FAIL",
            f"looking for credentials took longer than {limit_s:g} s.",
            "check your credential settings (a profile that calls a slow process or network).",
        )
        return doctor.steps
    except Exception as exc:
        doctor.emit("config", "FAIL", one_line(exc))
        return doctor.steps
    assert facts is not None
    extra = f"; {', '.join(facts.details)}" if facts.details else ""
    doctor.emit("config", "ok", f"{name} ({origin}), model {_model_id(model)}{extra}")
    creds = facts.credentials
    if creds.found:
        doctor.emit("credentials", "ok", f"from {creds.source}" if creds.source else "found")
    else:
        doctor.emit("credentials", "FAIL", "none found.", creds.fix)
    reachable = True
    endpoint = facts.endpoint
    if endpoint is None:
        why = (
            "no network endpoint (in-process model)"
            if info.extra.get("check")
            else "the plugin names no endpoint (it registers no check= hook)"
        )
        doctor.emit("dns", "skip", why + ".")
        doctor.emit("tls", "skip", why + ".")
    else:
        sockaddr = await doctor.dns(endpoint)
        if sockaddr is None:
            reachable = False
            doctor.emit("tls", "skip", "the host name did not resolve.")
        else:
            reachable = await doctor.connect(endpoint, sockaddr)
    if not creds.found:
        doctor.emit("session", "skip", "no credentials to open a session with.")
    elif not reachable:
        doctor.emit("session", "skip", "the endpoint cannot be reached.")
    else:
        await doctor.session(model, creds)
    return doctor.steps


def run_check(args: argparse.Namespace) -> int:
    """Entry point of ``bidi check``: exit status 1 if any step failed."""
    out = sys.stdout
    began = time.monotonic()
    steps = asyncio.run(check(args.model, parse_settings(args.settings), limit_s=args.timeout))
    took = time.monotonic() - began
    failed = [s.name for s in steps if s.verdict == "FAIL"]
    if failed:
        out.write(f"{args.model}: not ready ({', '.join(failed)} failed; {took:.1f} s).\n")
        return 1
    out.write(f"{args.model}: ready ({took:.1f} s).\n")
    return 0
