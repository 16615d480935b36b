"""Soak test: a long BidiAgent conversation with forced restarts against each provider's fake.

Not collected by pytest (no ``test_`` prefix) and not run in CI: ``nox -s soak`` runs it.
For every installed provider that ships a fake (``register(..., fake=...)``), in parallel
(one process each, so memory figures do not mix), it

* talks to the fake through :class:`bidi_core.BidiAgent` for ``--minutes`` (default 10),
* sends audio continuously (20 ms PCM chunks in real time, at the model's input rate)
  and a numbered text turn ("ping N") every ``--text-every`` seconds,
* forces a restart every ``--restart-every`` seconds (default 30) by injecting the
  provider's connection time limit, which the agent answers with a restart,

and reports restarts, lost inputs (text turns the fake never received or the agent
never saw answered; audio bytes sent but never received) and memory growth (RSS and
tracemalloc) from the end of a warm-up to the end.

    python tests/soak/run_soak.py --minutes 2
    python tests/soak/run_soak.py --provider openai_realtime --minutes 1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
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
from bidi_core.testing import AssistantConfig, load_fake

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


async def soak(
    name: str, minutes: float, restart_every: float, text_every: float
) -> dict[str, Any]:
    """Soak one provider; return its numbers."""
    registry = Registry()
    info = registry.model_info(name)
    serve = load_fake(info.extra["fake"])
    # Short answers keep the talk flowing; the fake still streams real audio frames.
    async with serve(assistant_config=AssistantConfig(seed=1)) as fake:
        model = registry.get_model(name, **fake.model_kwargs)
        rate = model.capabilities.input_sample_rates[0]  # type: ignore[attr-defined]
        chunk = bytes(rate * CHUNK_MS // 1000 * 2)  # silence: no barge-in, just load
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
        began = loop.time()
        end = began + minutes * 60.0
        warm = began + min(30.0, minutes * 60.0 / 4)
        next_text = began + 1.0
        next_restart = began + restart_every
        base: tuple[int, Any] | None = None
        tracemalloc.start(5)
        try:
            tick = began
            while loop.time() < end:
                if reader.done():
                    errors.append(f"receive() ended: {reader.exception()!r}")
                    break
                now = loop.time()
                if base is None and now >= warm:
                    gc.collect()
                    base = (_rss_kib(), tracemalloc.take_snapshot())
                if now >= next_text:
                    # The fake keeps every client frame for tests to inspect; in the soak
                    # that record (in this process) would swamp the client's own memory.
                    fake.received.clear()
                    text = f"ping {len(sent_texts) + 1}"
                    sent_texts.append(text)
                    await agent.send(text)
                    next_text += text_every
                if now >= next_restart and fake.assistants:
                    fake.assistants[-1].inject_fault("time_limit")
                    next_restart += restart_every
                await agent.send(BidiAudioInputEvent(audio=chunk, sample_rate=rate))
                audio_sent += len(chunk)
                tick += CHUNK_MS / 1000
                await asyncio.sleep(max(0.0, tick - loop.time()))
            await asyncio.sleep(3.0)  # let the last answers arrive
        finally:
            await agent.stop()
            with contextlib.suppress(BaseException):
                await reader
        gc.collect()
        rss_end = _rss_kib()
        snap_end = tracemalloc.take_snapshot()
        tracemalloc.stop()
        received = {
            value
            for assistant in fake.assistants
            for kind, value in assistant.inputs
            if kind == "text"
        }
        audio_received = sum(
            value
            for assistant in fake.assistants
            for kind, value in assistant.inputs
            if kind == "audio"
        )
    growth = []
    rss_start = 0
    if base is not None:
        rss_start = base[0]
        stats = snap_end.compare_to(base[1], "lineno")
        growth = [
            f"{_where(s.traceback[0].filename)}:{s.traceback[0].lineno} +{s.size_diff // 1024} KiB"
            for s in stats[:5]
            if s.size_diff > 0
        ]
        traced = sum(s.size_diff for s in stats)
    else:
        traced = 0
    return {
        "provider": name,
        "minutes": minutes,
        "connections": len(fake.assistants),
        "restarts": restarts,
        "texts_sent": len(sent_texts),
        "texts_lost": sorted(set(sent_texts) - received, key=lambda t: int(t.split()[1])),
        "texts_unanswered": sorted(set(sent_texts) - answered, key=lambda t: int(t.split()[1])),
        "audio_sent_bytes": audio_sent,
        "audio_lost_bytes": audio_sent - audio_received,
        "history_messages": len(agent.messages),
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "traced_growth_kib": traced // 1024,
        "top_growth": growth,
        "output_audio_dropped_chunks": dropped,
        "errors": errors,
    }


def _where(filename: str) -> str:
    return filename.rsplit("site-packages/", maxsplit=1)[-1].rsplit("/work/main/", maxsplit=1)[-1]


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        "| provider | min | restarts | texts sent | texts lost | unanswered | audio lost "
        "| RSS start -> end (MiB) | traced growth (KiB) | history msgs |"
    )
    lines = [head, "|" + "---|" * 10]
    lines.extend(
        (
            f"| {r['provider']} | {r['minutes']:g} | {r['restarts']} | {r['texts_sent']} "
            f"| {len(r['texts_lost'])} | {len(r['texts_unanswered'])} "
            f"| {r['audio_lost_bytes']} B of {r['audio_sent_bytes']} "
            f"| {r['rss_start_kib'] / 1024:.1f} -> {r['rss_end_kib'] / 1024:.1f} "
            f"| {r['traced_growth_kib']} | {r['history_messages']} |"
        )
        for r in results
    )
    return "\n".join(lines)


def main() -> int:
    """Run the soak (every provider in parallel, or one with ``--provider``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("BIDI_SOAK_MINUTES", "10"))
    )
    parser.add_argument("--restart-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--text-every", type=float, default=2.0, help="seconds")
    parser.add_argument("--provider", help="soak only this registry name")
    parser.add_argument("--json", action="store_true", help="print one JSON result")
    args = parser.parse_args()
    if args.provider:
        result = asyncio.run(soak(args.provider, args.minutes, args.restart_every, args.text_every))
        print(json.dumps(result) if args.json else _table([result]))
        return 0 if not (result["texts_lost"] or result["errors"]) else 1
    names = [m.name for m in Registry().list_models() if m.extra.get("fake")]
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--provider",
                name,
                "--json",
                "--minutes",
                str(args.minutes),
                "--restart-every",
                str(args.restart_every),
                "--text-every",
                str(args.text_every),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    results = []
    for name, proc in procs.items():
        out, _ = proc.communicate()
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            print(
                f"{name}: the soak failed (exit {proc.returncode}): {out[-500:]}", file=sys.stderr
            )
    print(_table(results))
    for r in results:
        if r["texts_lost"] or r["texts_unanswered"] or r["errors"]:
            print(
                f"{r['provider']}: lost {r['texts_lost'][:10]}, unanswered "
                f"{r['texts_unanswered'][:10]}, errors {r['errors'][:3]}"
            )
        print(f"{r['provider']} top growth: {r['top_growth']}")
    ok = all(not (r["texts_lost"] or r["errors"]) for r in results) and len(results) == len(names)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
