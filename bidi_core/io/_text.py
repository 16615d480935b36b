"""The text console: typed lines in, a readable live transcript out."""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import json
import locale
import os
import queue
import stat
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any, TextIO

from .._protocol import ModelCapabilities
from ..events import (
    BidiAudioDroppedEvent,
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)

__all__ = ["TextInput", "TextOutput"]

_MAX_PENDING_LINES = 256  # the fd reader pauses beyond this many unread lines
_DETAIL_CHARS = 200  # tool inputs/results are cut to this length in the transcript


class _LineReader:
    """Common interface of the two ways of reading lines without blocking the loop."""

    async def readline(self) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _FdLineReader(_LineReader):
    """Read a pipe, terminal or socket through the event loop's selector (no thread)."""

    def __init__(self, fd: int, encoding: str, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._partial = ""
        self._lines: collections.deque[str] = collections.deque()
        self._ready = asyncio.Event()
        self._eof = False
        self._closed = False
        self._watching = False
        self._watch()

    @classmethod
    def open(cls, stream: Any, loop: asyncio.AbstractEventLoop) -> _FdLineReader | None:
        """Return a reader for *stream*'s descriptor, or None if the loop cannot watch it."""
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):
            return None
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)):
            return None  # regular files never block for long: the thread reader handles them
        encoding = getattr(stream, "encoding", None) or locale.getpreferredencoding(False)
        try:
            codecs.lookup(encoding)
            return cls(fd, encoding, loop)
        except (LookupError, NotImplementedError, OSError, ValueError):
            return None  # e.g. the Windows proactor loop has no add_reader

    def _watch(self) -> None:
        if not self._watching:
            self._loop.add_reader(self._fd, self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:  # pragma: no cover - spurious wake-up
            return
        except OSError:
            data = b""
        if data:
            text = self._partial + self._decoder.decode(data)
        else:
            text = self._partial + self._decoder.decode(b"", final=True)
        *lines, self._partial = text.split("\n")
        self._lines.extend(lines)
        if not data:
            if self._partial:
                self._lines.append(self._partial)
                self._partial = ""
            self._eof = True
            self._unwatch()
        elif len(self._lines) >= _MAX_PENDING_LINES:
            self._unwatch()  # resumes once the consumer catches up
        self._ready.set()

    async def readline(self) -> str | None:
        while not self._lines:
            if self._eof or self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        line = self._lines.popleft()
        if not self._eof and not self._closed and len(self._lines) < _MAX_PENDING_LINES // 2:
            self._watch()
        return line

    async def aclose(self) -> None:
        self._closed = True
        self._unwatch()
        self._ready.set()


class _ThreadLineReader(_LineReader):
    """Read any text stream with ``readline()`` on a worker thread, one line per request."""

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._future: asyncio.Future[str] | None = None
        self._eof = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="bidi-text-input", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._requests.get():
            try:
                line: str | BaseException = self._stream.readline()
            except Exception as exc:
                line = exc
            try:
                self._loop.call_soon_threadsafe(self._deliver, line)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return

    def _deliver(self, line: str | BaseException) -> None:
        future = self._future
        if future is None or future.done():
            return
        if isinstance(line, BaseException):
            future.set_exception(line)
        else:
            future.set_result(line)

    async def readline(self) -> str | None:
        if self._eof or self._closed:
            return None
        self._future = self._loop.create_future()
        self._requests.put(True)
        line = await self._future
        if not line:
            self._eof = True
            return None
        return line.removesuffix("\n")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._requests.put(False)
        if self._future is not None and not self._future.done():
            self._future.set_result("")  # wake the reader as at end of file
        # An idle worker exits at once; one blocked inside readline() exits when it
        # returns (it is a daemon thread, so it never keeps the process alive).
        for _ in range(20):
            if not self._thread.is_alive():
                break
            await asyncio.sleep(0.005)


class TextInput:
    """Typed user turns from stdin (or any text stream), one line per turn.

    Lines are read without blocking the event loop: pipes and terminals are
    watched by the loop's selector (no thread); other streams (files,
    ``io.StringIO``, Windows consoles) are read by a worker thread one line at a
    time. Surrounding whitespace is stripped and blank lines are skipped. The
    input ends at end of file (at once if there is no stdin at all) or when a
    line equals ``quit_command``. The stream
    is never closed by this channel (it belongs to the caller).

    Args:
        stream: Where to read; ``sys.stdin`` (looked up when reading starts) if None.
        quit_command: A line that ends the input, or None for none.

    Example::

        await BidiAgent("simulated").run(inputs=[TextInput()], outputs=[TextOutput()])
    """

    def __init__(self, stream: TextIO | None = None, *, quit_command: str | None = "/quit") -> None:
        self.stream = stream
        self.quit_command = quit_command
        self._reader: _LineReader | None = None
        self._closed = False

    async def events(self, capabilities: ModelCapabilities) -> AsyncIterator[str | BidiInputEvent]:
        """Yield each non-blank line as a ``str`` until EOF, ``quit_command`` or :meth:`aclose`.

        Args:
            capabilities: The model's capabilities (unused: text needs no conversion).
        """
        del capabilities
        if self._closed:
            return
        stream = self.stream if self.stream is not None else sys.stdin
        if stream is None:  # no standard input at all (a closed descriptor 0)
            return
        loop = asyncio.get_running_loop()
        reader: _LineReader | None = _FdLineReader.open(stream, loop)
        if reader is None:
            reader = _ThreadLineReader(stream, loop)
        self._reader = reader
        try:
            while not self._closed:
                line = await reader.readline()
                if line is None:
                    return
                text = line.strip()
                if not text:
                    continue
                if self.quit_command is not None and text == self.quit_command:
                    return
                yield text
        finally:
            await reader.aclose()
            if self._reader is reader:
                self._reader = None

    async def aclose(self) -> None:
        """Stop reading and release the reader thread or selector registration; idempotent."""
        self._closed = True
        reader = self._reader
        if reader is not None:
            await reader.aclose()

    def __repr__(self) -> str:
        return f"<TextInput stream={self.stream!r} closed={self._closed}>"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _result_text(content: Any) -> str:
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and "text" in block:
                parts.append(str(block["text"]))
            elif isinstance(block, dict) and "json" in block:
                parts.append(_short(block["json"]))
            else:
                parts.append(_short(block))
    return _short(" ".join(parts)) if parts else ""


class TextOutput:
    """Print a readable live transcript of the conversation (no audio).

    Shown: final user and assistant transcripts (``user: ...``), the assistant's
    streaming deltas growing on one line, tool calls and results, tool
    cancellations, interruptions, connection restarts, errors and dropped-audio
    notices (``[tool call] ...``, ``[interrupted] ...``). With ``verbose`` also
    connection start/close, response start/end and usage. Audio and any other
    event are ignored. Every write is flushed, so the transcript is live.

    Args:
        stream: Where to print; ``sys.stdout`` (looked up at each write) if None.
        verbose: Also print connection, response and usage events.
    """

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self._open: tuple[str, str | None] | None = None  # utterance whose line is open
        self._streamed: dict[tuple[str, str | None], str] = {}  # deltas printed per utterance
        self._tool_names: dict[str, str] = {}
        self._closed = False

    # ------------------------------------------------------------------ output

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(text)
        stream.flush()

    def _end_line(self) -> None:
        if self._open is not None:
            self._open = None
            self._write("\n")

    def _line(self, text: str) -> None:
        self._end_line()
        self._write(text + "\n")

    def _tool_label(self, tool_use_id: str) -> str:
        name = self._tool_names.get(tool_use_id)
        return f"{name} ({tool_use_id})" if name else tool_use_id

    # ---------------------------------------------------------------- handlers

    def _transcript(self, event: BidiTranscriptStreamEvent) -> None:
        key = (event.role, event.item_id)
        if not event.is_final:
            if event.role == "user" or not event.text:
                return  # user speech is shown once it is final
            if self._open != key:
                self._end_line()
                self._write(f"{event.role}: ")
                self._open = key
            self._write(event.text)
            self._streamed[key] = self._streamed.get(key, "") + event.text
            return
        streamed = self._streamed.pop(key, None)
        if streamed is not None and event.text.startswith(streamed):
            rest = event.text[len(streamed) :]
            if self._open == key:
                self._write(rest)
                self._end_line()
            elif rest.strip():
                self._line(f"{event.role}: ...{rest}")
            return
        self._line(f"{event.role}: {event.text}")

    def render(self, event: BidiOutputEvent | ToolResultEvent | object) -> None:
        """Print *event* synchronously (what :meth:`handle` does)."""
        if isinstance(event, BidiTranscriptStreamEvent):
            self._transcript(event)
        elif isinstance(event, ToolUseStreamEvent):
            tool_use = event.tool_use
            self._tool_names[tool_use["toolUseId"]] = tool_use["name"]
            self._line(f"[tool call] {tool_use['name']} {_short(tool_use.get('input', {}))}")
        elif isinstance(event, ToolResultEvent):
            result = event.tool_result
            label = self._tool_label(result["toolUseId"])
            text = _result_text(result.get("content"))
            self._line(f"[tool result] {label}: {result.get('status', '?')}: {text}".rstrip())
        elif isinstance(event, BidiToolCancelEvent):
            ids = ", ".join(self._tool_label(i) for i in event.tool_use_ids)
            self._line(f"[tool cancelled] {ids}")
        elif isinstance(event, BidiInterruptionEvent):
            self._line(f"[interrupted] {event.reason}")
        elif isinstance(event, BidiConnectionRestartEvent):
            self._line(f"[restart] connection restarted ({event.reason}): {event.message}")
        elif isinstance(event, BidiErrorEvent):
            code = f" {event.code}" if event.code else ""
            state = "" if event.recoverable else " (not recoverable)"
            self._line(f"[error{code}] {event.message}{state}")
        elif isinstance(event, BidiAudioDroppedEvent):
            self._line(
                f"[audio dropped] {event.dropped_chunks} chunk(s), "
                f"{event.dropped_bytes} bytes ({event.reason})"
            )
        elif isinstance(event, BidiResponseCompleteEvent):
            self._end_line()
            if event.stop_reason == "error":
                self._line(f"[response failed] {event.response_id}")
            elif self.verbose:
                self._line(f"[response end] {event.response_id}: {event.stop_reason}")
        elif not self.verbose:
            return
        elif isinstance(event, BidiConnectionStartEvent):
            self._line(f"[connected] {event.model} ({event.connection_id})")
        elif isinstance(event, BidiConnectionCloseEvent):
            self._line(f"[closed] {event.connection_id}: {event.reason}")
        elif isinstance(event, BidiResponseStartEvent):
            self._line(f"[response start] {event.response_id}")
        elif isinstance(event, BidiUsageEvent):
            self._line(
                f"[usage] input {event.input_tokens}, output {event.output_tokens}, "
                f"total {event.total_tokens} tokens"
            )

    async def handle(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Print one event (see the class docstring for what is shown)."""
        if not self._closed:
            self.render(event)

    def clear_audio(self) -> None:
        """Do nothing: text has no queued audio."""

    def played_ms(self, response_id: str) -> float | None:
        """Return None: text output does not track playback."""
        del response_id
        return None

    async def aclose(self) -> None:
        """End an open transcript line; idempotent. The stream is not closed."""
        if not self._closed:
            with contextlib.suppress(Exception):
                self._end_line()
            self._closed = True

    def __repr__(self) -> str:
        return f"<TextOutput stream={self.stream!r} verbose={self.verbose}>"
