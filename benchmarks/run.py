"""Run the bidi benchmarks and write ``benchmarks/results.md``.

    python benchmarks/run.py                  # everything (about 15 minutes)
    python benchmarks/run.py --quick          # fewer rounds, short scale trials
    python benchmarks/run.py --only receive,send --providers openai

Rows (see README "Benchmarks"):

* ``receive``: CPU time per server event, the same pre-encoded frames (20 ms audio
  deltas, transcript deltas, usage) from one benchmark server process, through the
  floor (bare wire decode), bidi's plugin and strands-agents' model of the provider.
* ``send``: CPU time per 20 ms audio chunk through ``send()``, same three columns.
* ``scale``: the most concurrent real-time sessions (20 ms audio in and out) one
  client process pinned to one core sustains with p99 lateness under 20 ms and
  nothing lost; the server runs in another process on the other core.
* ``startup``: ``import bidi_core``, ``list_models()`` and ``get_model()`` per provider,
  each in a fresh interpreter.
* ``restart``: ``BidiAgent`` restart gap against each plugin's own fake.
* ``gateway``: real-time sessions one ``bidi serve`` process (pinned to one core)
  carries with p99 added latency under 20 ms and nothing lost: ``remote`` -> serve ->
  simulated, and -> the OpenAI plugin -> the OpenAI benchmark server; as a ratio to a
  bare WebSocket echo on the same uvicorn + Starlette stack (:mod:`_gateway`).

Every measurement runs in a subprocess (``_worker.py``), so strands-agents can live in
its own environment: its Nova model pins ``aws-sdk-bedrock-runtime<0.12`` while the
bidi plugin needs 0.12. Pass ``--strands-python`` (``nox -s bench`` builds that venv).
Figures are medians over ``--repeats`` worker runs whose order rotates, so a noisy
neighbour hurts every column alike. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROVIDERS = ("openai", "gemini", "nova")
MODEL_NAMES = {"openai": "openai_realtime", "gemini": "gemini_live", "nova": "nova_sonic"}
IMPLS = ("floor", "bidi", "strands")
ROWS = ("receive", "send", "memory", "scale", "startup", "restart", "gateway")
GATEWAY_PATHS = ("echo", "simulated", "openai")
CLIENT_CPU, SERVER_CPU = 0, 1


@contextlib.contextmanager
def bench_server(
    provider: str, *, script: str = "_server.py", extra: tuple[str, ...] = (), cpu: int = SERVER_CPU
) -> Iterator[dict[str, Any]]:
    """Run ``_server.py`` for *provider* (or another *script*) in its own pinned process."""
    env = {**os.environ, "BENCH_SERVER_CPU": str(cpu)}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), provider, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            msg = f"the {provider} benchmark server did not start"
            raise RuntimeError(msg)
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def worker(python: str, spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run one ``_worker.py`` measurement and return its JSON result."""
    env = {**os.environ, "BENCH_CLIENT_CPU": str(CLIENT_CPU)}
    done = subprocess.run(
        [python, str(HERE / "_worker.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        msg = f"benchmark worker {spec.get('bench')}/{spec.get('impl', '')} failed:\n{tail}"
        raise RuntimeError(msg)
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------ receive / send


def path_bench(
    kind: str, providers: list[str], pythons: dict[str, str], repeats: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Median CPU µs per event (receive) or per chunk (send), per provider and impl."""
    out: dict[str, dict[str, float]] = {}
    for provider in providers:
        samples: dict[str, list[float]] = {impl: [] for impl in pythons}
        with bench_server(provider) as info:
            impls = list(pythons)
            for rep in range(repeats):
                shift = rep % len(impls)
                for impl in impls[shift:] + impls[:shift]:
                    spec = {
                        "bench": kind,
                        "provider": provider,
                        "impl": impl,
                        "info": info,
                        "rounds": rounds,
                        "warmup": 1,
                    }
                    result = worker(pythons[impl], spec)
                    samples[impl].append(median(result["cpu_us"]))
                    print(f"  {kind} {provider} {impl}: {samples[impl][-1]:.1f} µs", flush=True)
        out[provider] = {impl: median(v) for impl, v in samples.items()}
    return out


# ------------------------------------------------------------------------- scale


def scale_bench(  # noqa: PLR0917 - one call site, every argument a CLI option
    providers: list[str], python: str, seconds: float, start: int, cap: int, impl: str = "bidi"
) -> dict[str, dict[str, Any]]:
    """Largest session count with p99 lateness < 20 ms and nothing lost, per provider.

    *impl* ``"floor"`` runs the bare wire clients instead: the bound of the row.
    """
    out: dict[str, dict[str, Any]] = {}
    for provider in providers:

        def run_trial(n: int, provider: str = provider) -> dict[str, Any]:
            with bench_server(provider) as info:
                spec = {"bench": "scale", "provider": provider, "impl": impl, "info": info}
                return _measure(python, {**spec, "n": n, "seconds": seconds})

        out[provider] = _largest_passing(run_trial, start, cap, 10, f"scale {provider}")
    return out


def _measure(python: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One trial: the worker's result, marked ok when p99 < 20 ms and nothing was lost."""
    try:
        result = worker(python, spec)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result = {"n": spec["n"], "error": str(exc).splitlines()[-1]}
    result["ok"] = (
        "error" not in result
        and result["p99_lateness_ms"] < 20
        and result["out_lost"] == 0
        and result["in_lost"] == 0
    )
    return result


def _largest_passing(run_trial: Any, start: int, cap: int, step: int, label: str) -> dict[str, Any]:
    """Search the largest passing session count; every trial is kept for the report."""
    trials: list[dict[str, Any]] = []

    def trial(n: int) -> bool:
        result = run_trial(n)
        trials.append(result)
        print(f"  {label} n={n}: {result}", flush=True)
        return bool(result["ok"])

    best, worst = _search(trial, start, cap, step=step)
    passing = [t for t in trials if t.get("ok") and t["n"] == best]
    return {
        "sessions": best,
        "capped": worst is None,
        "at_best": passing[0] if passing else None,
        "trials": trials,
    }


# ----------------------------------------------------------------------- gateway


@contextlib.contextmanager
def gateway_servers(path: str, seconds: float) -> Iterator[dict[str, Any]]:
    """The server side of one gateway path: the gateway (or echo) on the server core.

    For ``openai`` the OpenAI benchmark server runs too, on the client core: the gateway
    process is what the row measures, so it keeps a core to itself.
    """
    if path != "openai":
        with bench_server(
            path, script="_gateway.py", extra=(json.dumps({"seconds": seconds}),)
        ) as info:
            yield info
        return
    with (
        bench_server("openai", cpu=CLIENT_CPU) as upstream,
        bench_server(
            "openai", script="_gateway.py", extra=(json.dumps({"upstream": upstream["port"]}),)
        ) as info,
    ):
        yield info


def gateway_bench(
    paths: list[str], python: str, seconds: float, start: int, cap: int
) -> dict[str, dict[str, Any]]:
    """Most sessions per gateway core with p99 added latency < 20 ms and nothing lost."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:

        def run_trial(n: int, path: str = path) -> dict[str, Any]:
            with gateway_servers(path, seconds) as info:
                spec = {"bench": "gateway", "path": path, "info": info}
                return _measure(python, {**spec, "n": n, "seconds": seconds})

        out[path] = _largest_passing(run_trial, start, cap, 1, f"gateway {path}")
    return out


def _by_cpu(row: dict[str, Any]) -> float:
    """Sessions a whole server core carries at the CPU cost of the busiest trial.

    The busiest (largest n) trial, because fixed costs (uvicorn's timer, the loop)
    weigh on small ones; CPU time is what a shared machine's neighbours disturb least.
    """
    trials = [t for t in row.get("trials", []) if "sessions_per_core_by_cpu" in t]
    if not trials:
        return float("nan")
    return float(max(trials, key=lambda t: t["n"])["sessions_per_core_by_cpu"])


def _search(trial: Any, start: int, cap: int, step: int = 1) -> tuple[int, int | None]:
    """Double from *start* until a trial fails, then bisect (to within *step* or 1/8)."""
    best, worst = 0, None
    n = start
    while n <= cap:
        if trial(n):
            best = n
            n *= 2
        else:
            worst = n
            break
    if worst is not None:
        lo, hi = best, worst
        while hi - lo > max(step, lo // 8):
            mid = (lo + hi) // 2
            if trial(mid):
                lo = mid
            else:
                hi = mid
        best = lo
    return best, worst


def _gateway_report(rows: dict[str, Any]) -> list[str]:
    lines = [
        "## Gateway (bidi serve on one core, real-time 20 ms audio in and out per session)",
        "",
        "| path | sessions per core | ratio to the echo | p99 added latency (ms) | lost in/out "
        "| server core busy | sessions per core by CPU cost (ratio) |",
        "|---|---|---|---|---|---|---|",
    ]
    echo = rows.get("echo", {}).get("sessions", 0)
    echo_cpu = _by_cpu(rows.get("echo", {}))
    for path, r in rows.items():
        b = r["at_best"] or {}
        more = "+" if r["capped"] else ""
        ratio = f"{r['sessions'] / echo:.2f}" if echo else "n/a"
        lines.append(
            f"| {path} | {r['sessions']}{more} | {ratio} "
            f"| {_fmt(b.get('p99_lateness_ms', float('nan')))} "
            f"| {b.get('in_lost', 'n/a')}/{b.get('out_lost', 'n/a')} "
            f"| {_fmt(b.get('server_cpu_share', float('nan')), 2)} "
            f"| {_fmt(_by_cpu(r), 0)} ({_ratio(_by_cpu(r), echo_cpu)}) |"
        )
    lines += ["", "Trials (n: p99 ms, lost in/out, ok):", ""]
    for path, r in rows.items():
        trials = ", ".join(
            f"{t['n']}: {t['error']}"
            if "error" in t
            else f"{t['n']}: {t['p99_lateness_ms']:.1f}, {t['in_lost']}/{t['out_lost']}, "
            f"{'ok' if t['ok'] else 'FAIL'}"
            for t in r["trials"]
        )
        lines.append(f"- {path}: {trials}")
    lines.append("")
    return lines


# ----------------------------------------------------------------------- startup

_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
import bidi_core
t1 = time.perf_counter()
bidi_core.list_models()
t2 = time.perf_counter()
model = bidi_core.get_model(sys.argv[1], **json.loads(sys.argv[2]))
t3 = time.perf_counter()
print(json.dumps({"import": (t1 - t0) * 1e3, "list": (t2 - t1) * 1e3, "get": (t3 - t2) * 1e3}))
"""

_STARTUP_CONFIG: dict[str, dict[str, Any]] = {
    "openai": {"client_config": {"api_key": "sk-bench"}},
    "gemini": {"client_config": {"api_key": "bench"}},
    "nova": {"client_config": {"region": "us-east-1"}},
}


def startup_bench(providers: list[str], python: str, runs: int) -> dict[str, dict[str, float]]:
    """Median ms of the three startup steps, each run in a fresh interpreter."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDBENCH",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    out: dict[str, dict[str, float]] = {}
    for provider in providers:
        samples: dict[str, list[float]] = {"import": [], "list": [], "get": []}
        args = [
            python,
            "-c",
            _STARTUP,
            MODEL_NAMES[provider],
            json.dumps(_STARTUP_CONFIG[provider]),
        ]
        subprocess.run(args, check=True, capture_output=True, env=env)
        for _ in range(runs):
            done = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
            for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                samples[key].append(value)
        out[provider] = {key: median(v) for key, v in samples.items()}
        print(f"  startup {provider}: {out[provider]}", flush=True)
    return out


# ----------------------------------------------------------------------- restart


def restart_bench(providers: list[str], python: str, restarts: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for provider in providers:
        spec = {"bench": "restart", "model": MODEL_NAMES[provider], "restarts": restarts}
        result = worker(python, spec)
        gaps = sorted(result["gap_ms"])
        out[provider] = {
            "median_ms": median(gaps),
            "p90_ms": gaps[min(len(gaps) - 1, int(0.9 * len(gaps)))],
            "max_ms": gaps[-1],
            "fault_to_ready_ms": median(result["total_ms"]),
            "restarts": len(gaps),
            "history_messages": result["history_messages"],
        }
        print(f"  restart {provider}: {out[provider]}", flush=True)
    return out


# ------------------------------------------------------------------------ report


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # noqa: PLR0124 - NaN check


def _ratio(a: float, b: float) -> str:
    if a != a or b != b or b == 0:  # noqa: PLR0124 - NaN check
        return "n/a"
    return f"{a / b:.2f}x"


def report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# bidi benchmark results",
        "",
        f"Measured {meta['when']} on {meta['machine']} ({meta['cpus']} CPUs), Python "
        f"{meta['python']}, strands-agents {meta['strands']}. Client pinned to CPU "
        f"{CLIENT_CPU}, server to CPU {SERVER_CPU}. Medians of {meta['repeats']} runs. "
        "Ratios below 1 mean bidi is cheaper.",
        "",
    ]
    for kind, unit in (("receive", "µs CPU per server event"), ("send", "µs CPU per 20 ms chunk")):
        rows = results.get(kind)
        if not rows:
            continue
        lines += [
            f"## {kind.capitalize()} path ({unit})",
            "",
            "| provider | floor | bidi | strands-agents | bidi / floor | bidi / strands |"
            + (" bidi chunks/s of CPU |" if kind == "send" else ""),
            "|---|---|---|---|---|---|" + ("---|" if kind == "send" else ""),
        ]
        for provider, r in rows.items():
            bidi = r.get("bidi", float("nan"))
            line = (
                f"| {provider} | {_fmt(r.get('floor', float('nan')))} | {_fmt(bidi)} "
                f"| {_fmt(r.get('strands', float('nan')))} "
                f"| {_ratio(bidi, r.get('floor', float('nan')))} "
                f"| {_ratio(bidi, r.get('strands', float('nan')))} |"
            )
            if kind == "send":
                line += f" {1e6 / bidi:,.0f} |"
            lines.append(line)
        lines.append("")
    if results.get("scale"):
        lines += [
            "## Scale (one client core, real-time 20 ms audio in and out)",
            "",
            "| provider | sessions | p99 lateness (ms) | lost in/out | server p99 lag (ms) "
            "| RSS per session (KiB, open / running) | client CPU share |",
            "|---|---|---|---|---|---|---|",
        ]
        for provider, r in results["scale"].items():
            b = r["at_best"] or {}
            more = "+" if r["capped"] else ""
            p99 = _fmt(b.get("p99_lateness_ms", float("nan")))
            lines.append(
                f"| {provider} | {r['sessions']}{more} | {p99} "
                f"| {b.get('in_lost', 'n/a')}/{b.get('out_lost', 'n/a')} "
                f"| {_fmt(b.get('server_p99_ms', float('nan')))} "
                f"| {_fmt(b.get('rss_per_session_kib', float('nan')), 0)} / "
                f"{_fmt(b.get('rss_run_per_session_kib', float('nan')), 0)} "
                f"| {_fmt(b.get('cpu_share', float('nan')), 2)} |"
            )
        lines += ["", "Trials (n: p99 ms, lost in/out, ok):", ""]
        for provider, r in results["scale"].items():
            trials = ", ".join(
                f"{t['n']}: {t['error']}"
                if "error" in t
                else f"{t['n']}: {t['p99_lateness_ms']:.1f}, {t['in_lost']}/{t['out_lost']}, "
                f"{'ok' if t['ok'] else 'FAIL'}"
                for t in r["trials"]
            )
            lines.append(f"- {provider}: {trials}")
        lines.append("")
    if results.get("memory"):
        lines += [
            "## Memory per idle open session (KiB RSS, 50 sessions, shared-client floor)",
            "",
            "| provider | floor | bidi | strands-agents | bidi / floor |",
            "|---|---|---|---|---|",
        ]
        for provider, r in results["memory"].items():
            floor, bidi = r.get("floor", float("nan")), r.get("bidi", float("nan"))
            lines.append(
                f"| {provider} | {_fmt(floor)} | {_fmt(bidi)} "
                f"| {_fmt(r.get('strands', float('nan')))} | {_ratio(bidi, floor)} |"
            )
        lines.append("")
    if results.get("startup"):
        lines += [
            "## Startup (ms, fresh interpreter, .pyc warm)",
            "",
            "| provider | import bidi_core | list_models() | import + list | get_model() |",
            "|---|---|---|---|---|",
        ]
        for provider, r in results["startup"].items():
            lines.append(
                f"| {provider} | {_fmt(r['import'])} | {_fmt(r['list'])} "
                f"| {_fmt(r['import'] + r['list'])} | {_fmt(r['get'])} |"
            )
        lines.append("")
    if results.get("restart"):
        lines += [
            "## Restart gap (ms, BidiAgent against the plugin's fake, loopback)",
            "",
            "| provider | median | p90 | max | fault injected -> ready (median) | restarts "
            "| history replayed (messages) |",
            "|---|---|---|---|---|---|---|",
        ]
        for provider, r in results["restart"].items():
            lines.append(
                f"| {provider} | {_fmt(r['median_ms'])} | {_fmt(r['p90_ms'])} "
                f"| {_fmt(r['max_ms'])} "
                f"| {_fmt(r['fault_to_ready_ms'])} | {r['restarts']} | {r['history_messages']}+ |"
            )
        lines.append("")
    if results.get("gateway"):
        lines += _gateway_report(results["gateway"])
    return "\n".join(lines)


def _strands_version(python: str | None) -> str:
    if python is None:
        return "not installed"
    done = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('strands-agents'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ROWS), help="comma-separated rows")
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--strands-python", default=os.environ.get("BENCH_STRANDS_PYTHON"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale-seconds", type=float, default=8.0)
    parser.add_argument("--scale-start", type=int, default=50)
    parser.add_argument("--scale-cap", type=int, default=800)
    parser.add_argument(
        "--scale-impl",
        choices=("bidi", "floor"),
        default="bidi",
        help="whose sessions the scale row counts (floor: the bare wire clients)",
    )
    parser.add_argument(
        "--gateway-paths",
        default=",".join(GATEWAY_PATHS),
        help="the gateway row's paths: echo (the baseline), simulated, openai",
    )
    parser.add_argument("--gateway-start", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, short trials")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.rounds, args.scale_seconds = 2, 3, 4.0
    rows = [r for r in args.only.split(",") if r]
    providers = [p for p in args.providers.split(",") if p]
    paths = [p for p in args.gateway_paths.split(",") if p]
    unknown = sorted(set(rows) - set(ROWS)) + sorted(set(providers) - set(PROVIDERS))
    unknown += sorted(set(paths) - set(GATEWAY_PATHS))
    if unknown:
        parser.error(f"unknown rows or providers {unknown!r}; rows: {ROWS}, providers: {PROVIDERS}")
    pythons = {"floor": sys.executable, "bidi": sys.executable}
    if args.strands_python:
        pythons["strands"] = args.strands_python
    else:
        print("strands-agents column skipped: pass --strands-python", file=sys.stderr)
    results: dict[str, Any] = {}
    began = time.monotonic()
    if "receive" in rows:
        results["receive"] = path_bench("receive", providers, pythons, args.repeats, args.rounds)
    if "send" in rows:
        results["send"] = path_bench("send", providers, pythons, args.repeats, args.rounds)
    if "memory" in rows:
        from _memory import memory_bench

        results["memory"] = memory_bench(providers, pythons, args.repeats, bench_server, worker)
    if "startup" in rows:
        results["startup"] = startup_bench(providers, sys.executable, runs=15)
    if "restart" in rows:
        results["restart"] = restart_bench(providers, sys.executable, restarts=20)
    if "scale" in rows:
        results["scale"] = scale_bench(
            providers,
            sys.executable,
            args.scale_seconds,
            args.scale_start,
            args.scale_cap,
            args.scale_impl,
        )
    if "gateway" in rows:
        results["gateway"] = gateway_bench(
            paths, sys.executable, args.scale_seconds, args.gateway_start, args.scale_cap
        )
    meta = {
        "when": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "strands": _strands_version(args.strands_python),
        "repeats": args.repeats,
        "scale_impl": args.scale_impl,
    }
    text = report(results, meta)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, default=str) + "\n",
        encoding="utf-8",
    )
    print(text)
    print(f"\n({time.monotonic() - began:.0f} s; written to {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
