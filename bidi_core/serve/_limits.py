"""Admission and limits of ``bidi serve``: tokens, origins, session slots, input rate.

Pure and synchronous (no Starlette): the endpoints call these before and while a
session runs, and the tests drive them directly too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from ._config import ServeConfig

__all__ = [
    "Admission",
    "AudioRateLimiter",
    "RedactTokens",
    "SessionSlots",
    "admit",
    "install_redaction",
    "token_from",
]

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)


def token_from(headers: Mapping[str, str], query_string: bytes | str) -> str | None:
    """The token a client presented: ``Authorization: Bearer <token>``, else ``?token=``.

    Browsers cannot set headers on a WebSocket, hence the query parameter.
    """
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key == "token":
            return value
    return None


class Admission:
    """Why a connection was refused: an HTTP status and a sentence for the client."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"Admission({self.status}, {self.reason!r})"


def admit(
    config: ServeConfig,
    headers: Mapping[str, str],
    query_string: bytes | str,
    *,
    token_later: bool = False,
) -> Admission | None:
    """Check a WebSocket upgrade's origin and token; None when it may proceed.

    Args:
        config: The server's configuration.
        headers: The request headers (lower-case names).
        query_string: The raw query string.
        token_later: A missing token is not yet an error (Twilio sends it in its
            ``start`` message); a wrong one still is.
    """
    if not config.origin_allowed(headers.get("origin"), headers.get("host")):
        return Admission(
            403,
            f"Origin {headers.get('origin')!r} may not open sessions here; the operator "
            "can allow it with --allow-origin.",
        )
    if config.token is None:
        return None
    given = token_from(headers, query_string)
    if given is None and token_later:
        return None
    if not config.token.matches(given):
        what = "No token was sent" if given is None else "The token is wrong"
        return Admission(
            401,
            f"{what}: send the server's token as 'Authorization: Bearer <token>' or as "
            "the 'token' query parameter.",
        )
    return None


class SessionSlots:
    """Counts this process's sessions against ``max_sessions``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> bool:
        """Take a slot; False if every slot is taken."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.active = max(0, self.active - 1)


class AudioRateLimiter:
    """Refuses audio sent faster than real time, beyond a burst for network jitter.

    A token bucket measured in milliseconds of audio: it holds at most ``burst_ms``
    and refills at real time (a little faster, for clock drift between the client's
    sound card and this machine).

    Args:
        burst_ms: Audio a client may be ahead of real time.
        clock: Seconds, monotonic (tests pass their own).
    """

    #: Refill speed relative to real time: 5 % headroom for clock drift.
    SPEED = 1.05

    def __init__(self, burst_ms: float, clock: Callable[[], float] | None = None) -> None:
        self.burst_ms = burst_ms
        self._clock = clock or time.monotonic
        self._level = burst_ms
        self._last = self._clock()
        self.refused_ms = 0.0

    def allow(self, audio_ms: float) -> bool:
        """Take *audio_ms* from the bucket; False (and nothing taken) if it would run dry."""
        now = self._clock()
        self._level = min(self.burst_ms, self._level + (now - self._last) * 1000 * self.SPEED)
        self._last = now
        if audio_ms > self._level:
            self.refused_ms += audio_ms
            return False
        self._level -= audio_ms
        return True


class RedactTokens(logging.Filter):
    """Masks ``token=...`` query parameters (and the token itself) in log records.

    uvicorn logs each WebSocket's path with its query string; a browser's token
    travels there. Installed on the ``uvicorn`` loggers by ``bidi serve``.

    Args:
        secret: The token value, masked wherever it appears.
    """

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is the logging module's problem
            return True
        redacted = _TOKEN_IN_TEXT.sub(r"\1***", text)
        if self._secret:
            redacted = redacted.replace(self._secret, "***")
        if redacted != text:
            record.msg = redacted
            record.args = None
        return True


def install_redaction(config: ServeConfig) -> None:
    """Mask tokens in uvicorn's log lines (it logs each WebSocket's path and query)."""
    secret = config.token.reveal() if config.token is not None else None
    for name in _UVICORN_LOGGERS:
        log = logging.getLogger(name)
        for existing in [f for f in log.filters if isinstance(f, RedactTokens)]:
            log.removeFilter(existing)
        log.addFilter(RedactTokens(secret))
