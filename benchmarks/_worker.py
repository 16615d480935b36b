"""One measurement process: a driver against a running benchmark server.

``python benchmarks/_worker.py '<json spec>'`` prints one JSON line with the samples.
Specs: ``{"bench": "receive"|"send", "provider", "impl", "info", "rounds", "warmup", ...}``.
The process pins itself to ``BENCH_CLIENT_CPU`` (default 0); the server runs on another core.
CPU time is ``time.process_time()`` (every thread of the process, so awscrt's too).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _frames as fr
from _drivers import ACK, make_driver
from _record import burst_frames, ignore_crt_body_writer


async def bench_receive(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU time per server frame of a burst of ``responses`` answers (plus the sentinel's)."""
    driver = make_driver(spec["provider"], spec["impl"], spec["info"])
    await driver.open()
    responses = int(spec.get("responses", 20))
    frames = burst_frames(spec["info"], responses)
    cpu: list[float] = []
    wall: list[float] = []
    try:
        for i in range(spec["warmup"] + spec["rounds"]):
            c0, w0 = time.process_time(), time.perf_counter()
            await driver.send_text(f"bench-go:receive:{responses}")
            await driver.wait_text(fr.SENTINEL)
            c1, w1 = time.process_time(), time.perf_counter()
            if i >= spec["warmup"]:
                cpu.append((c1 - c0) / frames * 1e6)
                wall.append((w1 - w0) / frames * 1e6)
    finally:
        await driver.close()
    return {"cpu_us": cpu, "wall_us": wall, "frames": frames}


async def bench_send(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU time per 20 ms audio chunk sent (until the server acknowledged all of them)."""
    driver = make_driver(spec["provider"], spec["impl"], spec["info"])
    await driver.open()
    chunks = int(spec.get("chunks", 500))
    pcm = fr.pcm_chunk(driver.rate)
    cpu: list[float] = []
    wall: list[float] = []
    try:
        for i in range(spec["warmup"] + spec["rounds"]):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(chunks):
                await driver.send_audio(pcm)
            await driver.send_text("bench-go:flush")
            ack, _ = await driver.wait_text(ACK)
            c1, w1 = time.process_time(), time.perf_counter()
            got = int(ack.split(":")[1])
            if got != chunks:
                msg = f"the server received {got} of {chunks} audio chunks"
                raise RuntimeError(msg)
            if i >= spec["warmup"]:
                cpu.append((c1 - c0) / chunks * 1e6)
                wall.append((w1 - w0) / chunks * 1e6)
    finally:
        await driver.close()
    return {"cpu_us": cpu, "wall_us": wall, "chunks": chunks}


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _one_session(driver: Any, seconds: float, lateness: list[float]) -> dict[str, int]:
    """Talk in real time on one open session: 20 ms audio in, the server's paced audio out."""
    received = 0

    def on_audio(pcm: bytes) -> None:
        nonlocal received
        sent_at, _ = fr.read_stamp(pcm)
        lateness.append(time.monotonic() - sent_at)
        received += 1

    driver.on_audio = on_audio
    pcm = getattr(driver, "input_pcm", None) or fr.pcm_chunk(driver.rate)
    count = int(seconds * 1000 / fr.CHUNK_MS)

    async def speak() -> int:
        start = time.monotonic()
        for seq in range(count):
            due = start + seq * fr.CHUNK_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await driver.send_audio(pcm)
        return count

    await driver.send_text(f"bench-go:rt:{seconds}")
    speaker = asyncio.create_task(speak())
    done, _ = await driver.wait_text(re.compile(r"bench-done:[0-9]+:[0-9.]+"))
    spoken = await speaker
    _, sent, server_p99 = done.split(":")
    await driver.send_text("bench-go:flush")
    ack, _ = await driver.wait_text(ACK)
    return {
        "out_sent": int(sent),
        "out_received": received,
        "in_sent": spoken,
        "in_received": int(ack.split(":")[1]),
        "server_p99_us": int(float(server_p99) * 1000),
    }


async def bench_scale(spec: dict[str, Any]) -> dict[str, Any]:
    """``n`` concurrent real-time sessions for ``seconds``: lateness, drops, memory."""
    return await _scale(spec, lambda: make_driver(spec["provider"], spec["impl"], spec["info"]))


async def bench_gateway(spec: dict[str, Any]) -> dict[str, Any]:
    """The scale measurement through ``bidi serve`` (or its echo baseline), see :mod:`_gateway`."""
    from _gateway_clients import make_gateway_client

    return await _scale(spec, lambda: make_gateway_client(spec["path"], spec["info"]))


async def _scale(spec: dict[str, Any], make: Any) -> dict[str, Any]:
    n = int(spec["n"])
    seconds = float(spec["seconds"])
    # One session first, so imports and caches do not count as per-session memory.
    warm = make()
    await warm.open()
    await warm.close()
    gc.collect()
    rss0 = _rss_kib()
    drivers = [make() for _ in range(n)]
    opened: list[Any] = []
    lateness: list[float] = []
    try:
        # Open in small batches: a burst of hundreds of handshakes is not what is measured.
        for i in range(0, n, 20):
            batch = drivers[i : i + 20]
            await asyncio.gather(*(d.open() for d in batch))
            opened.extend(batch)
        gc.collect()
        rss_open = _rss_kib()
        server0 = await _server_cpu(spec)
        c0 = time.process_time()
        w0 = time.perf_counter()
        results = await asyncio.gather(*(_one_session(d, seconds, lateness) for d in drivers))
        cpu = time.process_time() - c0
        wall = time.perf_counter() - w0
        server1 = await _server_cpu(spec)
        rss_run = _rss_kib()
    finally:
        await asyncio.gather(*(d.close() for d in opened), return_exceptions=True)
    lateness.sort()
    p99 = lateness[min(len(lateness) - 1, int(0.99 * len(lateness)))] if lateness else 0.0
    return {
        "n": n,
        "p99_lateness_ms": p99 * 1000,
        "p50_lateness_ms": (lateness[len(lateness) // 2] * 1000) if lateness else 0.0,
        "out_lost": sum(r["out_sent"] - r["out_received"] for r in results),
        "in_lost": sum(r["in_sent"] - r["in_received"] for r in results),
        "server_p99_ms": max(r["server_p99_us"] for r in results) / 1000,
        "rss_per_session_kib": (rss_open - rss0) / n,
        "rss_run_per_session_kib": (rss_run - rss0) / n,
        "cpu_share": cpu / wall,
        **_server_share(server0, server1, n),
    }


async def _server_cpu(spec: dict[str, Any]) -> dict[str, float] | None:
    """The gateway process's CPU clock (``GET /bench-cpu``), for the gateway row only."""
    if spec.get("bench") != "gateway":
        return None
    reader, writer = await asyncio.open_connection("127.0.0.1", spec["info"]["port"])
    writer.write(b"GET /bench-cpu HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    data: dict[str, float] = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    return data


def _server_share(before: Any, after: Any, n: int) -> dict[str, float]:
    """The server core's busy share, and the sessions a whole core would carry at that cost."""
    if not before or not after:
        return {}
    share = (after["cpu_s"] - before["cpu_s"]) / (after["wall_s"] - before["wall_s"])
    return {"server_cpu_share": share, "sessions_per_core_by_cpu": n / share if share else 0.0}


async def bench_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """RSS growth per idle open session: ``n`` sessions opened after one warm-up session.

    The floor's sessions share one client (``info["shared"]``): what a process that
    keeps one SDK client for all its sessions pays per session.
    """
    n = int(spec["n"])
    info = {**spec["info"], "shared": spec["impl"] == "floor"}
    warm = make_driver(spec["provider"], spec["impl"], info)
    await warm.open()
    drivers = [make_driver(spec["provider"], spec["impl"], info) for _ in range(n)]
    opened: list[Any] = []
    try:
        await asyncio.sleep(0.2)
        gc.collect()
        rss0 = _rss_kib()
        for i in range(0, n, 10):
            batch = drivers[i : i + 10]
            await asyncio.gather(*(d.open() for d in batch))
            opened.extend(batch)
        await asyncio.sleep(0.2)
        gc.collect()
        rss1 = _rss_kib()
    finally:
        await asyncio.gather(*(d.close() for d in opened), return_exceptions=True)
        await warm.close()
    return {"kib_per_session": (rss1 - rss0) / n, "n": n}


async def bench_restart(spec: dict[str, Any]) -> dict[str, Any]:
    """``BidiAgent`` restarts against the plugin's own fake (``bidi_*.testing``).

    Three answered turns build a history; then, ``restarts`` times, one more turn is
    answered and the fake hits its
    connection time limit and we time (a) the agent's ``BidiConnectionRestartEvent``
    to the new connection's ``BidiConnectionStartEvent`` (stop, start, history
    replayed: ``start()`` has returned) and (b) the fault's injection to the same point.
    """
    from bidi_core import BidiAgent, Registry
    from bidi_core.events import (
        BidiConnectionRestartEvent,
        BidiConnectionStartEvent,
        BidiTranscriptStreamEvent,
    )
    from bidi_core.testing import AssistantConfig, load_fake

    registry = Registry()
    serve = load_fake(registry.model_info(spec["model"]).extra["fake"])
    gaps: list[float] = []
    totals: list[float] = []
    async with serve(assistant_config=AssistantConfig(seed=1)) as fake:
        agent = BidiAgent(registry.get_model(spec["model"], **fake.model_kwargs))
        async with agent:
            events = agent.receive().__aiter__()

            async def until(kind: type, **match: Any) -> Any:
                async for event in events:
                    if isinstance(event, kind) and all(
                        getattr(event, k) == v for k, v in match.items()
                    ):
                        return event
                msg = "receive() ended"
                raise RuntimeError(msg)

            await until(BidiConnectionStartEvent)
            for i in range(3):
                await agent.send(f"turn {i}: tell me about restarts")
                await until(BidiTranscriptStreamEvent, role="assistant", is_final=True)
            history = len(agent.messages)
            for i in range(int(spec["restarts"])):
                # One answered turn on each new connection: a talk goes on between limits.
                await agent.send(f"turn {i + 3}: and after the restart?")
                await until(BidiTranscriptStreamEvent, role="assistant", is_final=True)
                injected = time.perf_counter()
                fake.assistants[-1].inject_fault("time_limit")
                await until(BidiConnectionRestartEvent)
                restart = time.perf_counter()
                await until(BidiConnectionStartEvent)
                ready = time.perf_counter()
                gaps.append((ready - restart) * 1000)
                totals.append((ready - injected) * 1000)
    return {"gap_ms": gaps, "total_ms": totals, "history_messages": history}


BENCHES = {
    "gateway": bench_gateway,
    "receive": bench_receive,
    "send": bench_send,
    "scale": bench_scale,
    "memory": bench_memory,
    "restart": bench_restart,
}


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    ignore_crt_body_writer(asyncio.get_running_loop())
    return await BENCHES[spec["bench"]](spec)


def main() -> None:
    spec = json.loads(sys.argv[1])
    cpu = int(os.environ.get("BENCH_CLIENT_CPU", "0"))
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    result = asyncio.run(_run(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
