"""Soak test: a long BidiAgent conversation with forced restarts against each provider's fake.

Not collected by pytest (no ``test_`` prefix) and not run in CI: ``nox -s soak`` runs it.
For every installed provider that ships a fake (``register(..., fake=...)``), in its own
process (so memory figures do not mix; ``--jobs`` at once, by default one per two cores:
a real-time talk with its fake in the same process needs most of a core), it

* talks to the fake through :class:`bidi_core.BidiAgent` for ``--minutes`` (default 10),
* sends audio continuously (20 ms chunks of near-silence in real time, at the model's
  input rate, each numbered in its first four bytes) and a numbered text turn
  ("ping N") every ``--text-every`` seconds,
* forces a restart every ``--restart-every`` seconds (default 30) by injecting the
  provider's connection time limit, which the agent answers with a restart,

and reports restarts, lost inputs (text turns the fake never received or the agent
never saw answered; audio chunks no connection of the fake took in, and chunks taken
in twice, which a replay after a restart may cause) and memory growth from the end of
a warm-up to the end: RSS, and tracemalloc growth split into the client's and the
fake's (the fakes keep a record of every frame for tests; it runs in this process).

A watchdog prints every task's stack and fails the soak when it stops making progress
for ``--stall-after`` seconds; the parent kills a child that outlives its deadline.

    python tests/soak/run_soak.py --minutes 2
    python tests/soak/run_soak.py --provider openai_realtime --minutes 1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import re
import ssl
import subprocess
import sys
import tracemalloc
from typing import Any

from bidi_core import BidiAgent, Registry
from bidi_core.events import (
    BidiAudioDroppedEvent,
    BidiAudioInputEvent,
    BidiConnectionRestartEvent,
    BidiTranscriptStreamEvent,
)
from bidi_core.testing import AssistantConfig, ScriptedAssistant, load_fake

CHUNK_MS = 20


def _rss_kib() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _await_chain(task: asyncio.Task[Any]) -> str:
    """Where a task waits: every coroutine frame down to the awaited future."""
    steps = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is None:
            steps.append(repr(awaited)[:160])
            break
        steps.append(f"{_where(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return " -> ".join(steps)


async def _watchdog(
    beat: list[Any], stall_after: float, stalled: list[str], main: asyncio.Task[Any] | None
) -> None:
    """Cancel *main* (after printing every task's stack) once it stops making progress."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(1.0)
        if loop.time() - beat[0] <= stall_after:
            continue
        stalled.append(f"no progress for {stall_after:g} s while in {beat[1]}")
        print(f"soak watchdog: {stalled[-1]}; task stacks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                print(f"--- {task.get_name()}: {_await_chain(task)}", file=sys.stderr)
        sys.stderr.flush()
        if main is not None:
            main.cancel()
        beat[0] = loop.time() + 3600.0  # once; agent.stop() is bounded by its own timeout
        return


def _count_audio_chunks() -> list[int]:
    """Record the number of every soak chunk any fake's assistant takes in."""
    seen: list[int] = []
    original = ScriptedAssistant.user_audio

    def user_audio(self: ScriptedAssistant, pcm: bytes, sample_rate: int) -> None:
        size = sample_rate * CHUNK_MS // 1000 * 2
        if len(pcm) % size == 0:  # a replay joins whole chunks into one send
            seen.extend(int.from_bytes(pcm[i : i + 4], "little") for i in range(0, len(pcm), size))
        original(self, pcm, sample_rate)

    ScriptedAssistant.user_audio = user_audio  # type: ignore[method-assign]
    return seen


def _fake_report(fake: Any, seen: list[int]) -> dict[str, Any]:
    """What the fake's assistants took in (the same whether in-process or not)."""
    return {
        "connections": len(fake.assistants),
        "texts": [v for a in fake.assistants for kind, v in a.inputs if kind == "text"],
        "audio_bytes": sum(v for a in fake.assistants for kind, v in a.inputs if kind == "audio"),
        "chunks_seen": seen,
        "protocol_errors": list(getattr(fake, "protocol_errors", []))[:5],
        "rss_kib": _rss_kib(),
    }


def _portable(value: Any) -> Any:
    """*value* (a fake's ``model_kwargs``) as JSON that :func:`_restore` rebuilds."""
    if isinstance(value, dict):
        return {key: _portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, ssl.SSLContext):
        cadata = b"".join(value.get_ca_certs(binary_form=True))
        return {"__ssl_cadata__": base64.b64encode(cadata).decode("ascii")}
    get_credentials = getattr(value, "get_credentials", None)
    if callable(get_credentials):  # a boto3.Session with static fake credentials
        frozen = get_credentials().get_frozen_credentials()
        return {
            "__boto3_session__": {
                "aws_access_key_id": frozen.access_key,
                "aws_secret_access_key": frozen.secret_key,
                "region_name": value.region_name,
            }
        }
    msg = (
        f"The fake's model_kwargs hold a {type(value).__name__}, which the soak cannot pass "
        "to another process; run the soak with --fake-in-process."
    )
    raise TypeError(msg)


def _restore(value: Any) -> Any:
    if isinstance(value, list):
        return [_restore(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "__ssl_cadata__" in value:
        return ssl.create_default_context(cadata=base64.b64decode(value["__ssl_cadata__"]))
    if "__boto3_session__" in value:
        import boto3  # only for a fake that hands out a boto3 session

        return boto3.Session(**value["__boto3_session__"])
    return {key: _restore(item) for key, item in value.items()}


async def serve_fake(name: str) -> None:
    """Run *name*'s fake; take commands on stdin, one JSON line each (``--serve-fake``).

    Prints ``{"model_kwargs": ...}`` once listening; then ``{"cmd": "inject", "kind": k}``
    injects a fault into the newest connection's assistant and ``{"cmd": "report"}``
    prints what the assistants took in (:func:`_fake_report`) and stops.
    """
    info = Registry().model_info(name)
    serve = load_fake(info.extra["fake"])
    seen = _count_audio_chunks()
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    # Short answers keep the talk flowing; the fake still streams real audio frames.
    async with serve(assistant_config=AssistantConfig(seed=1)) as fake:
        print(json.dumps({"model_kwargs": _portable(fake.model_kwargs)}), flush=True)
        while line := await commands.readline():
            command = json.loads(line)
            # The fake keeps every client frame for tests to inspect; not needed here.
            fake.received.clear()
            if command["cmd"] == "inject" and fake.assistants:
                fake.assistants[-1].inject_fault(command["kind"])
            elif command["cmd"] == "report":
                break
        print(json.dumps(_fake_report(fake, seen)), flush=True)


class _FakeProcess:
    """The fake in a child process (``--serve-fake``)."""

    def __init__(self, proc: asyncio.subprocess.Process, model_kwargs: dict[str, Any]) -> None:
        self.proc = proc
        self.model_kwargs = model_kwargs

    @classmethod
    async def start(cls, name: str) -> _FakeProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve-fake",
            name,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=1 << 26,  # the report lists every chunk number seen
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 60.0)
        if not first:
            await proc.wait()
            msg = f"The {name} fake process exited with {proc.returncode} before listening."
            raise RuntimeError(msg)
        return cls(proc, _restore(json.loads(first)["model_kwargs"]))

    def inject(self, kind: str) -> None:
        self._command({"cmd": "inject", "kind": kind})

    def _command(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode("utf-8") + b"\n")

    async def report(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        self._command({"cmd": "report"})
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60.0)
        await self.proc.wait()
        return dict(json.loads(line))

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class _FakeHere:
    """The fake in this process (``--fake-in-process``)."""

    def __init__(self, fake: Any, seen: list[int]) -> None:
        self.fake = fake
        self.seen = seen
        self.model_kwargs = fake.model_kwargs

    def inject(self, kind: str) -> None:
        # The fake keeps every client frame for tests to inspect: not needed here.
        self.fake.received.clear()
        if self.fake.assistants:
            self.fake.assistants[-1].inject_fault(kind)

    async def report(self) -> dict[str, Any]:
        return _fake_report(self.fake, self.seen)


async def soak(
    name: str,
    minutes: float,
    restart_every: float,
    text_every: float,
    stall_after: float = 60.0,
    *,
    fake_in_process: bool = False,
) -> dict[str, Any]:
    """Soak one provider; return its numbers."""
    registry = Registry()
    if not fake_in_process:
        child = await _FakeProcess.start(name)
        try:
            return await _soak(
                registry,
                name,
                child,
                minutes=minutes,
                restart_every=restart_every,
                text_every=text_every,
                stall_after=stall_after,
            )
        finally:
            await child.kill()
    info = registry.model_info(name)
    serve = load_fake(info.extra["fake"])
    seen = _count_audio_chunks()
    async with serve(assistant_config=AssistantConfig(seed=1)) as fake:
        here = _FakeHere(fake, seen)
        return await _soak(
            registry,
            name,
            here,
            minutes=minutes,
            restart_every=restart_every,
            text_every=text_every,
            stall_after=stall_after,
        )


async def _soak(
    registry: Registry,
    name: str,
    fake: _FakeProcess | _FakeHere,
    *,
    minutes: float,
    restart_every: float,
    text_every: float,
    stall_after: float,
) -> dict[str, Any]:
    model = registry.get_model(name, **fake.model_kwargs)
    rate = model.capabilities.input_sample_rates[0]  # type: ignore[attr-defined]
    # Near-silence (no barge-in, just load), each chunk numbered in its first bytes.
    size = rate * CHUNK_MS // 1000 * 2
    chunks_sent = 0
    agent = BidiAgent(model, restart_timeout=30.0)
    sent_texts: list[str] = []
    answered: set[str] = set()
    audio_sent = 0
    restarts = 0
    dropped = 0
    errors: list[str] = []
    await agent.start()

    async def read() -> None:
        nonlocal restarts, dropped
        async for event in agent.receive():
            if isinstance(event, BidiConnectionRestartEvent):
                restarts += 1
            elif isinstance(event, BidiAudioDroppedEvent):
                dropped += event.dropped_chunks
            elif (
                isinstance(event, BidiTranscriptStreamEvent)
                and event.role == "assistant"
                and event.is_final
            ):
                for text in sent_texts:
                    if text in event.text:
                        answered.add(text)

    reader = asyncio.create_task(read(), name="soak-reader")
    loop = asyncio.get_running_loop()
    beat = [loop.time(), "start"]
    stalled: list[str] = []
    watchdog = asyncio.create_task(
        _watchdog(beat, stall_after, stalled, asyncio.current_task()), name="soak-watchdog"
    )
    began = loop.time()
    end = began + minutes * 60.0
    warm = began + min(30.0, minutes * 60.0 / 4)
    next_text = began + 1.0
    next_restart = began + restart_every
    base: tuple[int, Any] | None = None
    tracemalloc.start(8)
    try:
        tick = began
        while loop.time() < end:
            beat[0] = loop.time()
            if reader.done():
                errors.append(f"receive() ended: {reader.exception()!r}")
                break
            now = loop.time()
            if base is None and now >= warm:
                gc.collect()
                base = (_rss_kib(), tracemalloc.take_snapshot())
            if now >= next_text:
                text = f"ping {len(sent_texts) + 1}"
                sent_texts.append(text)
                beat[1] = f"send({text!r})"
                await agent.send(text)
                next_text += text_every
            if now >= next_restart:
                fake.inject("time_limit")
                next_restart += restart_every
            beat[1] = "send(audio)"
            chunk = chunks_sent.to_bytes(4, "little") + bytes(size - 4)
            await agent.send(BidiAudioInputEvent(audio=chunk, sample_rate=rate))
            beat[1] = "sleep"
            chunks_sent += 1
            audio_sent += len(chunk)
            tick += CHUNK_MS / 1000
            await asyncio.sleep(max(0.0, tick - loop.time()))
        beat[0], beat[1] = loop.time() + 3.0, "drain"
        await asyncio.sleep(3.0)  # let the last answers arrive
    except asyncio.CancelledError:
        if not stalled:
            raise
        errors.extend(stalled)
    finally:
        beat[0], beat[1] = loop.time(), "agent.stop()"
        await agent.stop()
        with contextlib.suppress(BaseException):
            await reader
        watchdog.cancel()
        with contextlib.suppress(BaseException):
            await watchdog
    gc.collect()
    rss_end = _rss_kib()
    snap_end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    report = await fake.report()
    # A fake may take several turns as one input (one response answers them all).
    taken = " | ".join(report["texts"])
    received = {text for text in sent_texts if re.search(rf"(?<!\S){text}(?!\S)", taken)}
    chunks_seen: list[int] = report["chunks_seen"]
    growth = []
    rss_start = 0
    traced = fake_traced = 0
    if base is not None:
        rss_start = base[0]
        client_end, client_base = (_client_only(snap) for snap in (snap_end, base[1]))
        stats = client_end.compare_to(client_base, "traceback")
        growth = [
            f"+{s.size_diff // 1024} KiB at "
            + " <- ".join(f"{_where(f.filename)}:{f.lineno}" for f in reversed(s.traceback))
            for s in stats[:5]
            if s.size_diff > 0
        ]
        traced = sum(s.size_diff for s in stats)
        if isinstance(fake, _FakeHere):
            everything = snap_end.compare_to(base[1], "filename")
            fake_traced = sum(s.size_diff for s in everything) - traced
    return {
        "provider": name,
        "minutes": minutes,
        "fake_in_process": isinstance(fake, _FakeHere),
        "connections": report["connections"],
        "restarts": restarts,
        "texts_sent": len(sent_texts),
        "texts_lost": sorted(set(sent_texts) - received, key=lambda t: int(t.split()[1])),
        "texts_unanswered": sorted(set(sent_texts) - answered, key=lambda t: int(t.split()[1])),
        "audio_sent_bytes": audio_sent,
        "audio_lost_bytes": max(0, audio_sent - report["audio_bytes"]),
        "audio_chunks_sent": chunks_sent,
        "audio_chunks_lost": len(set(range(chunks_sent)) - set(chunks_seen)),
        "audio_chunks_replayed": len(chunks_seen) - len(set(chunks_seen)),
        "audio_chunks_lost_at": _ranges(sorted(set(range(chunks_sent)) - set(chunks_seen)))[:10],
        "history_messages": len(agent.messages),
        "texts_resent_by_agent": agent.stats.resent_inputs,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "traced_growth_kib": traced // 1024,
        "fake_traced_growth_kib": fake_traced // 1024 if isinstance(fake, _FakeHere) else None,
        "fake_rss_end_kib": report["rss_kib"],
        "top_growth": growth,
        "output_audio_dropped_chunks": dropped,
        "errors": errors + [f"fake: {e}" for e in report["protocol_errors"]],
    }


def _client_only(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """Drop what the fake (its records of every frame) and this script allocated."""
    return snapshot.filter_traces(
        [
            tracemalloc.Filter(False, "*/testing/*", all_frames=True),
            tracemalloc.Filter(False, "*/testing.py", all_frames=True),
            tracemalloc.Filter(False, __file__, all_frames=True),
            tracemalloc.Filter(False, tracemalloc.__file__),
        ]
    )


def _where(filename: str) -> str:
    return filename.rsplit("site-packages/", maxsplit=1)[-1].rsplit("/work/main/", maxsplit=1)[-1]


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        "| provider | min | restarts | texts sent | texts lost | unanswered "
        "| audio chunks lost | audio chunks sent twice "
        "| RSS start -> end (MiB) | client traced growth (KiB) | fake's (KiB) | history msgs |"
    )
    lines = [head, "|" + "---|" * 12]
    lines.extend(
        (
            f"| {r['provider']} | {r['minutes']:g} | {r['restarts']} | {r['texts_sent']} "
            f"| {len(r['texts_lost'])} | {len(r['texts_unanswered'])} "
            f"| {r['audio_chunks_lost']} of {r['audio_chunks_sent']} "
            f"| {r['audio_chunks_replayed']} "
            f"| {r['rss_start_kib'] / 1024:.1f} -> {r['rss_end_kib'] / 1024:.1f} "
            f"| {r['traced_growth_kib']} "
            f"| {r['fake_traced_growth_kib'] if r['fake_in_process'] else 'own process'} "
            f"| {r['history_messages']} |"
        )
        for r in results
    )
    return "\n".join(lines)


def _ranges(numbers: list[int]) -> list[str]:
    """``[3, 4, 5, 9]`` -> ``["3-5", "9"]``."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return [f"{a}-{b}" if a != b else str(a) for a, b in out]


def _failed(result: dict[str, Any]) -> bool:
    return bool(result["texts_lost"] or result["audio_chunks_lost"] or result["errors"])


def main() -> int:
    """Run the soak (every provider in parallel, or one with ``--provider``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("BIDI_SOAK_MINUTES", "10"))
    )
    parser.add_argument("--restart-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--text-every", type=float, default=2.0, help="seconds")
    parser.add_argument(
        "--stall-after",
        type=float,
        default=60.0,
        help="seconds without progress before the soak prints every task's stack and fails",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(1, (os.cpu_count() or 1) // 2),
        help="providers soaked at once (default: one per two cores, so none starves)",
    )
    parser.add_argument("--provider", help="soak only this registry name")
    parser.add_argument("--json", action="store_true", help="print one JSON result")
    parser.add_argument(
        "--fake-in-process",
        action="store_true",
        help="run the fake in the soak's process (it then competes with the client)",
    )
    parser.add_argument("--serve-fake", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake(args.serve_fake))
        return 0
    if args.provider:
        result = asyncio.run(
            soak(
                args.provider,
                args.minutes,
                args.restart_every,
                args.text_every,
                args.stall_after,
                fake_in_process=args.fake_in_process,
            )
        )
        print(json.dumps(result) if args.json else _table([result]))
        return 0 if not _failed(result) else 1
    names = [m.name for m in Registry().list_models() if m.extra.get("fake")]

    def launch(name: str) -> subprocess.Popen[str]:
        command = [sys.executable, __file__, "--provider", name, "--json"]
        command += ["--minutes", str(args.minutes), "--restart-every", str(args.restart_every)]
        command += ["--text-every", str(args.text_every), "--stall-after", str(args.stall_after)]
        command += ["--fake-in-process"] if args.fake_in_process else []
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def collect(name: str, proc: subprocess.Popen[str]) -> None:
        # A child that hangs past its own watchdog (a blocked event loop) is killed here.
        try:
            out, _ = proc.communicate(timeout=args.minutes * 60.0 + args.stall_after + 120.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            print(f"{name}: the soak did not finish in time and was killed.", file=sys.stderr)
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            print(
                f"{name}: the soak failed (exit {proc.returncode}): {out[-500:]}", file=sys.stderr
            )

    results: list[dict[str, Any]] = []
    for first in range(0, len(names), args.jobs):
        batch = {name: launch(name) for name in names[first : first + args.jobs]}
        for name, proc in batch.items():
            collect(name, proc)
    print(_table(results))
    for r in results:
        if _failed(r) or r["texts_unanswered"]:
            print(
                f"{r['provider']}: lost {r['texts_lost'][:10]}, unanswered "
                f"{r['texts_unanswered'][:10]}, audio chunks lost {r['audio_chunks_lost']}, "
                f"errors {r['errors'][:3]}"
            )
        print(f"{r['provider']} top growth: {r['top_growth']}")
    ok = not any(_failed(r) for r in results) and len(results) == len(names)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
