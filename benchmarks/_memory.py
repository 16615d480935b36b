"""The memory row of ``run.py``: RSS per idle open session against a shared-client floor."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def memory_bench(  # noqa: PLR0917 - one call site
    providers: list[str],
    pythons: dict[str, str],
    repeats: int,
    bench_server: Callable[[str], AbstractContextManager[dict[str, Any]]],
    worker: Callable[[str, dict[str, Any]], dict[str, Any]],
    n: int = 50,
) -> dict[str, dict[str, float]]:
    """Median KiB of RSS per idle open session, *n* sessions per run, interleaved runs.

    The floor keeps one client for every session of its process (Gemini: one
    ``genai.Client``; Nova: one SDK client, so one HTTP/2 connection); OpenAI's floor
    is one bare WebSocket per session.
    """
    out: dict[str, dict[str, float]] = {}
    for provider in providers:
        samples: dict[str, list[float]] = {impl: [] for impl in pythons}
        with bench_server(provider) as info:
            impls = list(pythons)
            for rep in range(repeats):
                shift = rep % len(impls)
                for impl in impls[shift:] + impls[:shift]:
                    spec = {"bench": "memory", "provider": provider, "impl": impl, "info": info}
                    spec["n"] = n
                    result = worker(pythons[impl], spec)
                    samples[impl].append(result["kib_per_session"])
                    print(f"  memory {provider} {impl}: {samples[impl][-1]:.1f} KiB", flush=True)
        out[provider] = {impl: median(v) for impl, v in samples.items()}
    return out
