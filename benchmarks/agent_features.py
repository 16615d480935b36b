"""Cost of the agent's observer seam, of recording and of telemetry, per event.

Run: ``python benchmarks/agent_features.py`` (needs bidi-core[otel]; numpy makes the
recording's resampling faster). Prints times measured in one run; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from bidi_core import BidiAgent
from bidi_core.agent import SessionInfo
from bidi_core.events import BidiAudioInputEvent, BidiAudioStreamEvent, BidiTranscriptStreamEvent
from bidi_core.recording import Recorder


def session(agent: BidiAgent, t0: float) -> SessionInfo:
    return SessionInfo(
        session_id="bench",
        provider="simulated",
        model_id="m",
        output_sample_rate=24000,
        started_at=time.time(),
        t0=t0,
        stats=agent.stats,
        report=lambda event: None,
    )


def per_call(func: Any, arg: Any, count: int, reset: Any = None) -> float:
    best = float("inf")
    for _ in range(5):
        if reset is not None:
            reset()
        start = time.perf_counter()
        for _ in range(count):
            func(arg)
        best = min(best, (time.perf_counter() - start) / count)
    return best


async def main() -> None:
    agent = BidiAgent("simulated")
    event = BidiTranscriptStreamEvent(role="assistant", text="x", is_final=False)
    clear = agent._queue._items.clear
    put = per_call(agent._queue.put, event, 100_000, clear)
    emit = per_call(agent._emit, event, 100_000, clear)
    print(f"observer seam, no observers: {(emit - put) * 1e9:.0f} ns per event")
    t0 = time.monotonic()
    chunks = 3000
    out = BidiAudioStreamEvent(audio=bytes(960), sample_rate=24000)
    user = BidiAudioInputEvent(audio=bytes(640), sample_rate=16000)
    for name, hook, chunk in (("assistant", "on_event", out), ("user", "on_input", user)):
        recorder = Recorder(tempfile.mkdtemp())
        recorder.on_start(session(agent, t0))
        start = time.perf_counter()
        for index in range(chunks):
            getattr(recorder, hook)(chunk, t0 + index * 0.02)
        took = (time.perf_counter() - start) / chunks
        recorder.on_stop(t0 + chunks * 0.02)
        print(f"recording, {name} 20 ms chunk: {took * 1e6:.0f} us")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from bidi_core.telemetry import Telemetry

    telemetry = Telemetry(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
    telemetry.on_start(session(agent, t0))
    took = per_call(lambda e: telemetry.on_event(e, t0), out, chunks)
    print(f"telemetry, audio event: {took * 1e6:.2f} us")


if __name__ == "__main__":
    asyncio.run(main())
