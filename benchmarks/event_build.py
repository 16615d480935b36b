"""Cost of building events (their field checks included), in ns per event.

Audio events are built about 50 times a second per session (20 ms chunks), so their
checks must stay cheap. Run it against two checkouts to compare, e.g.::

    PYTHONPATH=/path/to/other/checkout python benchmarks/event_build.py
    python benchmarks/event_build.py

It prints the best of several timing runs per event kind (these machines are noisy:
compare runs made one after the other, and read ratios, not absolute numbers).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from bidi_core.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
)

PCM = bytes(640)  # 20 ms at 16 kHz
RESULT: Any = {
    "toolUseId": "t",
    "status": "success",
    "content": [{"json": {"a": [1, 2, {"b": "c"}]}}],
}

CASES: dict[str, Callable[[], object]] = {
    "BidiAudioInputEvent": lambda: BidiAudioInputEvent(audio=PCM, sample_rate=16000),
    "BidiAudioStreamEvent": lambda: BidiAudioStreamEvent(
        audio=PCM, sample_rate=24000, response_id="r1"
    ),
    "BidiTextInputEvent": lambda: BidiTextInputEvent(text="hello"),
    "BidiTranscriptStreamEvent": lambda: BidiTranscriptStreamEvent(
        role="assistant", text="hi", is_final=False, current_transcript="hi", item_id="i"
    ),
    "ToolResultEvent": lambda: ToolResultEvent(tool_result=RESULT),
}


def main() -> None:
    """Print ns per event for each case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000, help="events per timing run")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs; the best is kept")
    args = parser.parse_args()
    for name, build in CASES.items():
        best = min(timeit.repeat(build, number=args.number, repeat=args.repeat))
        print(f"{name:27s} {best / args.number * 1e9:8.0f} ns")


if __name__ == "__main__":
    main()
