"""Text console: TextInput reads turns without blocking the loop; TextOutput prints them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest

from bidi_core import ModelCapabilities
from bidi_core.events import (
    BidiAudioDroppedEvent,
    BidiAudioStreamEvent,
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.io import BidiInput, BidiOutput, TextInput, TextOutput

CAPS = ModelCapabilities()


def output_events() -> list[BidiEvent]:
    """One event of every type an output channel can be handed (agent events included)."""
    return [
        BidiConnectionStartEvent(connection_id="c1", model="m"),
        BidiResponseStartEvent(response_id="r1"),
        BidiAudioStreamEvent(audio=bytes(640), sample_rate=16000, response_id="r1"),
        BidiTranscriptStreamEvent(role="assistant", text="Hi", is_final=False),
        BidiTranscriptStreamEvent(role="assistant", text="Hi there", is_final=True),
        BidiTranscriptStreamEvent(role="user", text="hello", is_final=True),
        ToolUseStreamEvent(tool_use={"toolUseId": "t1", "name": "clock", "input": {}}),
        ToolResultEvent(
            tool_result={"toolUseId": "t1", "status": "success", "content": [{"text": "12:00"}]}
        ),
        BidiToolCancelEvent(tool_use_ids=["t1"]),
        BidiInterruptionEvent(response_id="r1"),
        BidiResponseCompleteEvent(response_id="r1", stop_reason="interrupted"),
        BidiUsageEvent(input_tokens=1, output_tokens=2, total_tokens=3),
        BidiErrorEvent(message="oops", code="E1"),
        BidiAudioDroppedEvent(dropped_chunks=1, dropped_bytes=640),
        BidiConnectionRestartEvent(reason="timeout", message="limit"),
        BidiConnectionCloseEvent(connection_id="c1", reason="stop"),
    ]


async def collect(channel: TextInput) -> list[Any]:
    """Every item the channel yields."""
    return [item async for item in channel.events(CAPS)]


def reader_threads() -> list[threading.Thread]:
    """Live TextInput worker threads."""
    return [t for t in threading.enumerate() if t.name == "bidi-text-input"]


@contextlib.contextmanager
def pipe() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A pipe: a text stream on the read end and the raw write descriptor."""
    read_fd, write_fd = os.pipe()
    stream = open(read_fd, encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        yield stream, write_fd
    finally:
        stream.close()
        with contextlib.suppress(OSError):
            os.close(write_fd)


# ---------------------------------------------------------------------- TextInput


def test_text_channels_satisfy_the_protocols() -> None:
    """TextInput and TextOutput are BidiInput and BidiOutput channels."""
    assert isinstance(TextInput(io.StringIO()), BidiInput)
    assert isinstance(TextOutput(io.StringIO()), BidiOutput)


async def test_lines_become_stripped_turns_until_eof() -> None:
    """Each non-blank line is yielded stripped, in order, and the input ends at EOF."""
    stream = io.StringIO("  hello\n\n   \nsecond line \r\nlast without newline")
    assert await collect(TextInput(stream)) == ["hello", "second line", "last without newline"]
    assert not reader_threads()


async def test_quit_command_ends_the_input() -> None:
    """A /quit line ends the input; nothing after it is read as a turn."""
    stream = io.StringIO("one\n/quit\ntwo\n")
    assert await collect(TextInput(stream)) == ["one"]
    custom = TextInput(io.StringIO("one\n/quit\nbye\ntwo\n"), quit_command="bye")
    assert await collect(custom) == ["one", "/quit"]
    assert await collect(TextInput(io.StringIO("/quit\n"), quit_command=None)) == ["/quit"]


async def test_a_regular_file_is_read_line_by_line(tmp_path: Path) -> None:
    """A file (e.g. `bidi chat < questions.txt`) is read to its end."""
    path = tmp_path / "q.txt"
    path.write_text("what time is it\nthanks\n", encoding="utf-8")
    with path.open(encoding="utf-8") as stream:
        assert await collect(TextInput(stream)) == ["what time is it", "thanks"]


async def test_a_pipe_is_read_through_the_loop_without_a_thread() -> None:
    """A pipe is watched by the loop: split writes and split UTF-8 characters reassemble."""
    with pipe() as (stream, write_fd):
        channel = TextInput(stream)
        items = channel.events(CAPS)
        first = asyncio.ensure_future(anext(items))
        os.write(write_fd, "héllo wo".encode()[:2])  # half of the 'é'
        await asyncio.sleep(0)
        assert not first.done()
        os.write(write_fd, "héllo wo".encode()[2:] + b"rld\nsecond\nthi")
        assert await first == "héllo world"
        assert not reader_threads()
        assert await anext(items) == "second"
        os.write(write_fd, b"rd")
        os.close(write_fd)
        assert [item async for item in items] == ["third"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
async def test_a_terminal_is_read_through_the_loop() -> None:
    """A terminal (the interactive case) is read line by line with no worker thread."""
    controller, terminal = os.openpty()
    stream = open(terminal, encoding="utf-8")  # noqa: SIM115, ASYNC230 - a pty, closed below
    try:
        channel = TextInput(stream)
        items = channel.events(CAPS)
        os.write(controller, b"typed line\n")
        assert await anext(items) == "typed line"
        assert not reader_threads()
        await channel.aclose()
        assert [item async for item in items] == []
    finally:
        stream.close()
        os.close(controller)


async def test_many_piped_lines_arrive_in_order() -> None:
    """More lines than the reader buffers (it pauses and resumes) all arrive, in order."""
    with pipe() as (stream, write_fd):
        lines = [f"line {i}" for i in range(1000)]
        payload = ("\n".join(lines) + "\n").encode()

        def write() -> None:
            os.write(write_fd, payload)
            os.close(write_fd)

        writer = threading.Thread(target=write)
        writer.start()
        got = await collect(TextInput(stream))
        writer.join()
        assert got == lines


async def test_aclose_ends_a_pending_read_and_unregisters_the_pipe() -> None:
    """aclose() while waiting for a line ends the iteration and stops watching the pipe."""
    with pipe() as (stream, _write_fd):
        channel = TextInput(stream)
        task = asyncio.ensure_future(collect(channel))
        await asyncio.sleep(0.01)
        await channel.aclose()
        assert await task == []
        assert asyncio.get_running_loop().remove_reader(stream.fileno()) is False
        await channel.aclose()  # idempotent
        assert await collect(channel) == []


class BlockingStream:
    """A stream whose readline() blocks until released, like a console without a selector."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reading = threading.Event()

    def readline(self, size: int | None = -1) -> str:
        self.reading.set()
        self.release.wait(5)
        return ""


async def test_aclose_wakes_a_reader_blocked_in_readline() -> None:
    """aclose() ends the iteration at once even when the worker is stuck in readline()."""
    stream = BlockingStream()
    channel = TextInput(typing.cast(TextIO, stream))
    task = asyncio.ensure_future(collect(channel))
    await asyncio.to_thread(stream.reading.wait, 5)
    await channel.aclose()
    assert await task == []
    stream.release.set()
    for thread in reader_threads():
        thread.join(5)
    assert not reader_threads()


async def test_worker_thread_is_released_after_aclose() -> None:
    """A stream read by the worker thread leaves no thread behind once closed."""
    channel = TextInput(io.StringIO("a\nb\n"))
    items = channel.events(CAPS)
    assert await anext(items) == "a"
    assert len(reader_threads()) == 1
    await channel.aclose()
    assert [item async for item in items] == []
    assert not reader_threads()


class FailingStream:
    """A stream whose readline() fails."""

    def readline(self, size: int | None = -1) -> str:
        msg = "disk on fire"
        raise OSError(msg)


async def test_a_read_error_reaches_the_consumer() -> None:
    """An error raised by the stream is raised from events(), not swallowed."""
    with pytest.raises(OSError, match="disk on fire"):
        await collect(TextInput(typing.cast(TextIO, FailingStream())))
    assert not reader_threads()


async def test_stdin_is_the_default_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a stream, sys.stdin (as it is when reading starts) is read; none means EOF."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n"))
    assert await collect(TextInput()) == ["from stdin"]
    monkeypatch.setattr(sys, "stdin", None)  # Python's stdin when descriptor 0 is closed
    assert await collect(TextInput()) == []


# --------------------------------------------------------------------- TextOutput


async def render(events: list[BidiEvent], **kwargs: Any) -> str:
    """What TextOutput prints for *events*."""
    out = io.StringIO()
    channel = TextOutput(out, **kwargs)
    for event in events:
        await channel.handle(event)  # type: ignore[arg-type]
    await channel.aclose()
    return out.getvalue()


async def test_transcript_shows_turns_and_streams_deltas_on_one_line() -> None:
    """User finals print whole; assistant deltas grow one line that the final completes."""
    text = await render(
        [
            BidiTranscriptStreamEvent(role="user", text="hel", is_final=False),
            BidiTranscriptStreamEvent(role="user", text="hello there", is_final=True),
            BidiResponseStartEvent(response_id="r1"),
            BidiTranscriptStreamEvent(role="assistant", text="Hi", is_final=False, item_id="i1"),
            BidiTranscriptStreamEvent(role="assistant", text=", you", is_final=False, item_id="i1"),
            BidiTranscriptStreamEvent(
                role="assistant", text="Hi, you!", is_final=True, item_id="i1"
            ),
            BidiResponseCompleteEvent(response_id="r1"),
            BidiTranscriptStreamEvent(role="assistant", text="Text only.", is_final=True),
        ]
    )
    assert text == "user: hello there\nassistant: Hi, you!\nassistant: Text only.\n"


async def test_tools_interruptions_restarts_errors_and_drops_are_shown() -> None:
    """Tool calls/results, cancels, barge-in, restarts, errors and drops get a line each."""
    text = await render(
        [
            BidiTranscriptStreamEvent(role="assistant", text="Let me", is_final=False),
            ToolUseStreamEvent(
                tool_use={"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}
            ),
            ToolResultEvent(
                tool_result={
                    "toolUseId": "t1",
                    "status": "success",
                    "content": [{"text": "sunny"}, {"json": {"c": 21}}],
                }
            ),
            BidiToolCancelEvent(tool_use_ids=["t1", "t9"]),
            BidiInterruptionEvent(response_id="r1"),
            BidiConnectionRestartEvent(reason="timeout", message="8 minute limit"),
            BidiErrorEvent(message="rate limited", code="429"),
            BidiErrorEvent(message="gone", recoverable=False),
            BidiAudioDroppedEvent(dropped_chunks=3, dropped_bytes=1920),
            BidiResponseCompleteEvent(response_id="r2", stop_reason="error"),
        ]
    )
    assert text.splitlines() == [
        "assistant: Let me",
        '[tool call] weather {"city": "Paris"}',
        '[tool result] weather (t1): success: sunny {"c": 21}',
        "[tool cancelled] weather (t1), t9",
        "[interrupted] user_speech",
        "[restart] connection restarted (timeout): 8 minute limit",
        "[error 429] rate limited",
        "[error] gone (not recoverable)",
        "[audio dropped] 3 chunk(s), 1920 bytes (output_queue_full)",
        "[response failed] r2",
    ]


async def test_a_final_after_a_broken_line_prints_only_the_rest() -> None:
    """Deltas cut by another line are not repeated; a corrected final is printed whole."""
    text = await render(
        [
            BidiTranscriptStreamEvent(role="assistant", text="Checking", is_final=False),
            ToolUseStreamEvent(tool_use={"toolUseId": "t1", "name": "clock", "input": {}}),
            BidiTranscriptStreamEvent(role="assistant", text=" now", is_final=False),
            BidiTranscriptStreamEvent(role="assistant", text="Checking now.", is_final=True),
            BidiTranscriptStreamEvent(role="assistant", text="Teh", is_final=False, item_id="x"),
            BidiTranscriptStreamEvent(
                role="assistant", text="The end.", is_final=True, item_id="x"
            ),
        ]
    )
    assert text.splitlines() == [
        "assistant: Checking",
        "[tool call] clock {}",
        "assistant:  now.",
        "assistant: Teh",
        "assistant: The end.",
    ]


async def test_verbose_adds_connection_response_and_usage_lines() -> None:
    """verbose=True also prints connection, response and usage events; default hides them."""
    events: list[BidiEvent] = [
        BidiConnectionStartEvent(connection_id="c1", model="sim"),
        BidiResponseStartEvent(response_id="r1"),
        BidiUsageEvent(input_tokens=3, output_tokens=4, total_tokens=7),
        BidiResponseCompleteEvent(response_id="r1"),
        BidiConnectionCloseEvent(connection_id="c1", reason="stopped"),
    ]
    assert await render(events) == ""
    assert (await render(events, verbose=True)).splitlines() == [
        "[connected] sim (c1)",
        "[response start] r1",
        "[usage] input 3, output 4, total 7 tokens",
        "[response end] r1: complete",
        "[closed] c1: stopped",
    ]


async def test_long_tool_details_are_shortened() -> None:
    """A huge tool input is cut to one short line."""
    text = await render(
        [ToolUseStreamEvent(tool_use={"toolUseId": "t", "name": "n", "input": {"x": "y" * 5000}})]
    )
    assert len(text) < 300
    assert text.endswith(('..."\n', "...\n"))


async def test_every_output_event_is_tolerated_and_audio_ignored() -> None:
    """TextOutput accepts every output event type (and junk) and never prints audio."""
    out = io.StringIO()
    channel = TextOutput(out, verbose=True)
    for event in output_events():
        await channel.handle(event)  # type: ignore[arg-type]
    await channel.handle(object())  # type: ignore[arg-type]
    assert "bytes" not in out.getvalue().replace("1920 bytes", "").replace("640 bytes", "")
    channel.clear_audio()
    assert channel.played_ms("r1") is None
    await channel.aclose()
    await channel.aclose()
    size = len(out.getvalue())
    await channel.handle(BidiErrorEvent(message="late"))
    assert len(out.getvalue()) == size  # closed: nothing more is printed


async def test_aclose_ends_an_open_line_and_stdout_is_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a stream TextOutput prints to sys.stdout; aclose() ends an open delta line."""
    channel = TextOutput()
    await channel.handle(
        BidiTranscriptStreamEvent(role="assistant", text="partial", is_final=False)
    )
    await channel.aclose()
    assert capsys.readouterr().out == "assistant: partial\n"


# ------------------------------------------------------------------------ imports


def test_text_and_wav_io_import_no_optional_package() -> None:
    """Importing bidi_core.io for text and WAV IO imports no sounddevice, numpy or soxr."""
    code = (
        "import sys\n"
        "import bidi_core.io as bio\n"
        "from bidi_core.io import TextInput, TextOutput, WavFileInput, WavFileOutput\n"
        "from bidi_core.io import PlaybackTracker, Resampler\n"
        "import bidi_core.agent\n"
        "Resampler(16000, 16000, channels=1).process(b'\\0\\0')\n"
        "heavy = {'sounddevice', 'numpy', 'soxr', '_sounddevice', 'cffi'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert 'bidi_core.io._sounddevice' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_public_names_are_exported_sorted() -> None:
    """Every name in bidi_core.io.__all__ resolves, and __all__ is sorted."""
    import bidi_core.io as bio

    assert bio.__all__ == sorted(bio.__all__)
    for name in bio.__all__:
        assert getattr(bio, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = bio.Nope
