"""Running plugin code so that a plugin cannot end the program it is loaded into.

Everything the core calls in a plugin (its import, its hook, a model factory, a
``credentials`` callable) runs inside :func:`plugin_code`. An ``Exception`` is the
caller's to report as usual. ``SystemExit`` and a ``KeyboardInterrupt`` the plugin
raised itself become :class:`PluginExit` (an ``Exception``), so the caller reports
them like any other failure of that plugin instead of ``bidi models`` ending silently.

A real Ctrl-C is still a ``KeyboardInterrupt`` for the user: while plugin code runs
in the main thread, the SIGINT handler is wrapped to note that a signal arrived,
and a ``KeyboardInterrupt`` that follows one is re-raised untouched. (Outside the
main thread no signal handler runs, so a ``KeyboardInterrupt`` there always comes
from code; with SIGINT ignored or at its OS default, Ctrl-C raises none.) Other
``BaseException`` s (``asyncio.CancelledError``, ``GeneratorExit``) are control flow
and always pass through.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["PluginExit", "plugin_code"]


class PluginExit(Exception):  # noqa: N818 - it reports an exit, it is not one
    """Plugin code raised ``SystemExit`` or ``KeyboardInterrupt`` (not a real Ctrl-C)."""

    def __init__(self, exc: BaseException) -> None:
        detail = f"({exc})" if str(exc) else ""
        super().__init__(
            f"{type(exc).__name__}{detail}: plugin code tried to end the program; bidi caught it"
        )


@contextlib.contextmanager
def _sigint_watch() -> Iterator[Callable[[], bool]]:
    """Yield a function saying whether a real SIGINT arrived while the block ran."""
    arrived = False

    def seen() -> bool:
        return arrived

    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN or SIG_DFL: Ctrl-C raises no KeyboardInterrupt
        yield seen
        return
    forward: Callable[[int, FrameType | None], Any] = previous

    def note(signum: int, frame: FrameType | None) -> Any:
        nonlocal arrived
        arrived = True
        return forward(signum, frame)

    try:
        signal.signal(signal.SIGINT, note)
    except ValueError:  # not the main interpreter: signals are not ours to handle
        yield seen
        return
    try:
        yield seen
    finally:
        if signal.getsignal(signal.SIGINT) is note:  # unless the plugin installed its own
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def plugin_code() -> Iterator[None]:
    """Run plugin code: its ``SystemExit`` or ``KeyboardInterrupt`` becomes :class:`PluginExit`.

    Raises:
        PluginExit: The block raised ``SystemExit``, or ``KeyboardInterrupt`` without
            a real SIGINT having arrived.
    """
    with _sigint_watch() as real_sigint:
        try:
            yield
        except KeyboardInterrupt as exc:
            if real_sigint():
                raise
            raise PluginExit(exc) from exc
        except SystemExit as exc:
            raise PluginExit(exc) from exc
