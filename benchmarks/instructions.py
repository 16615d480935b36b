"""Instructions per event of the receive and send paths, counted by valgrind.

    python benchmarks/instructions.py                      # every provider, floor and bidi
    python benchmarks/instructions.py --providers openai --impls floor,bidi --kinds receive

CPU time on a shared machine moves with its neighbours; the number of instructions a
client executes does not. Each (kind, provider, impl) runs the same ``_worker.py``
measurement twice under ``valgrind --tool=callgrind``, with 1 and with 1 + ``--rounds``
measured rounds; the difference, divided by the extra events, is the cost of one event
without the interpreter's start, the imports and the connection set-up. The server
runs outside valgrind. Instructions are not time (a cache miss costs more than an add),
so read these beside the CPU rows of ``run.py``, as a repeatable check of their ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import burst_frames
from run import PROVIDERS, bench_server

HERE = Path(__file__).resolve().parent

_REFS = re.compile(r"refs:\s+([0-9,]+)")


def instructions(python: str, spec: dict[str, Any]) -> int:
    """Instructions executed by one ``_worker.py`` run of *spec* (all threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                python,
                str(HERE / "_worker.py"),
                json.dumps(spec),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        msg = f"valgrind run of {spec['bench']}/{spec['impl']} failed:\n{tail}"
        raise RuntimeError(msg)
    return int(found.group(1).replace(",", ""))


def per_event(python: str, kind: str, provider: str, impl: str, rounds: int) -> float:
    """Instructions per event (receive: per server frame; send: per audio chunk)."""
    with bench_server(provider) as info:
        counts = []
        for measured in (1, 1 + rounds):
            spec = {
                "bench": kind,
                "provider": provider,
                "impl": impl,
                "info": info,
                "rounds": measured,
                "warmup": 1,
            }
            counts.append(instructions(python, spec))
    events = (burst_frames(info, 20) if kind == "receive" else 500) * rounds
    return (counts[1] - counts[0]) / events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--impls", default="floor,bidi")
    # The send row's count for bidi came out implausibly low (13,840 against the floor's
    # 149,724 while CPU time says 1.10x): not explained yet, so not run by default.
    parser.add_argument("--kinds", default="receive")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--strands-python", default=None)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    pythons = {"floor": args.python, "bidi": args.python, "strands": args.strands_python}
    rows: dict[str, dict[str, float]] = {}
    for kind in args.kinds.split(","):
        for provider in args.providers.split(","):
            row = rows.setdefault(f"{kind} {provider}", {})
            for impl in args.impls.split(","):
                python = pythons[impl]
                if python is None:
                    continue
                row[impl] = per_event(python, kind, provider, impl, args.rounds)
                print(f"  {kind} {provider} {impl}: {row[impl]:,.0f} instructions", flush=True)
    impls = args.impls.split(",")
    print("\n| path | " + " | ".join(impls) + " | bidi / floor |")
    print("|---|" + "---|" * (len(impls) + 1))
    for path, row in rows.items():
        cells = " | ".join(f"{row[i]:,.0f}" if i in row else "n/a" for i in impls)
        ratio = row["bidi"] / row["floor"] if "bidi" in row and "floor" in row else float("nan")
        print(f"| {path} | {cells} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
