"""Where one OpenAI audio delta's client time goes, step by step (in-process, no socket).

    python benchmarks/breakdown.py              # µs per frame, median of --repeats
    python benchmarks/breakdown.py --json       # the same, machine-readable

The receive row of ``run.py`` measures the whole client; this splits bidi's path into
the steps it takes for one ``response.output_audio.delta`` frame recorded from the
OpenAI fake, each timed alone over many frames, next to the floor's own work on the
same frame (``json.loads`` + ``base64.b64decode``). The socket read (``websockets``),
which floor and bidi share, is not in here.

Steps:

* ``floor``: what the floor does per frame: ``json.loads``, the type check, ``b64decode``.
* ``json.loads`` / ``base64 decode``: those two alone (with the fast path when installed).
* ``decode_frame``: the plugin's JSON parse and shape check.
* ``BidiAudioStreamEvent()``: constructing the event (attrs ``__init__``, validators).
* ``Decoded()``: the per-frame result object of the plugin's decoder.
* ``Decoder.feed_raw``: the whole wire decode (parse, base64, bookkeeping, both objects).
* ``model._handle``: ``feed_raw`` plus the model's gate checks and ``_emit``.
* ``delivery``: ``_emit`` -> the connection's queue -> ``receive()`` -> the caller's
  ``async for``, with the reader handing over batches of 40 events as a socket read does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BATCH = 40


def _per_call(fn: Callable[[], Any], n: int, repeats: int) -> float:
    """Median µs of one call of *fn*, over *repeats* runs of *n* calls."""
    runs = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        runs.append((time.process_time() - t0) / n * 1e6)
    return statistics.median(runs)


def _delivery(n: int, repeats: int) -> float:
    """µs per event from a model's ``_emit`` to the caller's ``async for``."""
    from bidi_core import BidiModelBase
    from bidi_core.events import BidiAudioStreamEvent

    event = BidiAudioStreamEvent(audio=b"\0" * 960, sample_rate=24000, response_id="r")

    class Emitter(BidiModelBase):
        provider = "breakdown"

        async def _open(self, **kwargs: Any) -> None:
            self.go = asyncio.Event()

        async def _read(self) -> None:
            while True:
                await self.go.wait()
                self.go.clear()
                for i in range(self.count):
                    self._emit(event)
                    if i % BATCH == BATCH - 1:
                        await asyncio.sleep(0)

        async def _send(self, event: Any) -> None:
            pass

        async def _close(self, *, graceful: bool) -> None:
            pass

    async def run() -> list[float]:
        model = Emitter(model_id="x", config={})
        model.count = n
        await model.start()
        events = model.receive().__aiter__()
        await events.__anext__()  # BidiConnectionStartEvent
        runs = []
        for _ in range(repeats):
            model.go.set()
            t0 = time.process_time()
            for _ in range(n):
                await events.__anext__()
            runs.append((time.process_time() - t0) / n * 1e6)
        await model.stop()
        return runs

    return statistics.median(asyncio.run(run()))


def breakdown(n: int = 20000, repeats: int = 7) -> dict[str, float]:
    """µs per OpenAI audio delta frame for each step (see the module docs)."""
    from _record import record

    from bidi_openai_realtime import _model
    from bidi_openai_realtime import _wire as wire

    rec = record("openai", answers=1)
    frame = rec.audio_template
    data = json.loads(frame)
    pcm = base64.b64decode(data["delta"])
    loads = json.loads
    b64decode = base64.b64decode

    def floor() -> None:
        event = loads(frame)
        if event["type"] == "response.output_audio.delta":
            b64decode(event["delta"])

    decoder = wire.Decoder()
    model = _model.OpenAIRealtimeModel(client_config={"api_key": "k"})
    model._decoder = decoder
    from bidi_core.events import BidiAudioStreamEvent

    out: dict[str, float] = {
        "floor": _per_call(floor, n, repeats),
        "json.loads": _per_call(lambda: loads(frame), n, repeats),
        "base64 decode": _per_call(lambda: b64decode(data["delta"]), n, repeats),
        "decode_frame": _per_call(lambda: wire.decode_frame(frame), n, repeats),
        "BidiAudioStreamEvent()": _per_call(
            lambda: BidiAudioStreamEvent(audio=pcm, sample_rate=24000, response_id="r"),
            n,
            repeats,
        ),
        "Decoded()": _per_call(
            lambda: wire.Decoded(events=[], event_type="response.output_audio.delta"), n, repeats
        ),
        "Decoder.feed_raw": _per_call(lambda: decoder.feed_raw(frame, 0.0), n, repeats),
        "model._handle": _per_call(lambda: model._handle(frame), n, repeats),
        "delivery": _delivery(n, repeats),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    steps = breakdown(args.frames, args.repeats)
    if args.json:
        print(json.dumps(steps))
        return 0
    for name, us in steps.items():
        print(f"{name:28s} {us:7.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
