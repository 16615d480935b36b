"""The servers of the ``gateway`` row: ``bidi serve`` and a bare echo on the same stack.

``python benchmarks/_gateway.py echo|simulated|openai '<json options>'`` prints one
JSON line (``{"port": ...}``) and serves until stdin closes, pinned to
``BENCH_SERVER_CPU`` (one core: the row counts sessions per core). All three run
uvicorn + Starlette with ``bidi serve``'s settings (:func:`uvicorn_config`):

* ``echo``: the baseline. ``WS /echo`` sends every binary frame straight back (stamped
  as it leaves, as the models' audio is) and
  answers the text ``bench-go:flush`` with ``bench-ack:<frames since the last flush>``:
  the same server stack with nothing of bidi in it.
* ``simulated``: ``bidi serve`` over the simulated model. The model is the real
  :class:`SimulatedModel` (its scripted assistant hears every input chunk and speaks a
  story at real-time pace) with two benchmark hooks: each output chunk is stamped with
  ``(monotonic time, seq)`` as it leaves the model, and the texts ``bench-go:rt:<s>``
  (tell a story) and ``bench-go:flush`` are answered in the benchmark server protocol
  of :mod:`_server` (``bench-done:<chunks>:0``, ``bench-ack:<audio inputs>``).
* ``openai``: ``bidi serve`` over the OpenAI Realtime plugin, pointed at the OpenAI
  benchmark server of :mod:`_server` (``{"upstream": port}``), which stamps its audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _frames as fr


def _echo_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        frames = 0
        seq = 0
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                frames += 1
                # Stamped as it leaves, like the models' audio: lateness is one way.
                await ws.send_bytes(fr.stamped(data, time.monotonic(), seq))
                seq += 1
            elif "bench-go:flush" in (message.get("text") or ""):
                with contextlib.suppress(Exception):  # the client may already be gone
                    await ws.send_text(f"bench-ack:{frames}")
                frames = 0

    return Starlette(routes=[WebSocketRoute("/echo", echo)])


async def _cpu(request: Any) -> Any:
    """This process's CPU seconds: the worker reads it around the measured phase."""
    from starlette.responses import JSONResponse

    return JSONResponse({"cpu_s": time.process_time(), "wall_s": time.monotonic()})


def _bench_simulated(story_seconds: float) -> Any:
    from bidi_core.events import BidiAudioStreamEvent, BidiTextInputEvent, BidiTranscriptStreamEvent
    from bidi_core.simulated import SimulatedModel
    from bidi_core.testing import _assistant as sa

    class BenchSimulated(SimulatedModel):
        """The simulated model, stamping its audio and speaking the bench protocol."""

        def __init__(self) -> None:
            super().__init__(
                provider_config={"pace": 1.0, "story_seconds": story_seconds, "seed": 1}
            )
            self._seq = 0
            self._audio_in = 0
            self._story: str | None = None

        def _on_action(self, action: sa.Action) -> None:
            if isinstance(action, sa.AudioChunk):
                pcm = fr.stamped(action.pcm, time.monotonic(), self._seq)
                self._seq += 1
                rate = self.capabilities.output_sample_rate
                self._emit(
                    BidiAudioStreamEvent(
                        audio=pcm, sample_rate=rate, response_id=action.response_id
                    )
                )
                return
            super()._on_action(action)
            if isinstance(action, sa.ResponseComplete) and self._story == action.response_id:
                self._story = None
                self._text(f"bench-done:{self._seq}:0")
            elif isinstance(action, sa.ResponseStart) and self._story == "":
                self._story = action.response_id

        def _text(self, text: str) -> None:
            self._emit(BidiTranscriptStreamEvent(role="assistant", text=text, is_final=False))

        async def _send(self, event: Any) -> None:
            if isinstance(event, BidiTextInputEvent) and event.text.startswith("bench-go:"):
                if event.text.startswith("bench-go:flush"):
                    count, self._audio_in = self._audio_in, 0
                    self._text(f"bench-ack:{count}")
                    return
                self._seq = 0
                self._audio_in = 0
                self._story = ""  # the next response is the story
                event = BidiTextInputEvent(text="tell me a story")
            elif type(event).__name__ == "BidiAudioInputEvent":
                self._audio_in += 1
            await super()._send(event)

    return BenchSimulated


def _app(kind: str, options: dict[str, Any]) -> tuple[Any, Any]:
    from bidi_core.serve import ServeConfig, create_app

    config = ServeConfig(
        model="simulated" if kind == "simulated" else "openai_realtime",
        max_sessions=10_000,
        idle_timeout_s=600.0,
        audio_burst_ms=60_000.0,
        max_message_bytes=2**20,
        model_kwargs=(
            {
                "client_config": {
                    "api_key": "sk-bench",
                    "base_url": f"ws://127.0.0.1:{options.get('upstream', 0)}/v1",
                },
                "provider_config": {"connection_limit_s": None},
            }
            if kind == "openai"
            else {}
        ),
    )
    if kind == "echo":
        return _echo_app(), config
    factory = _bench_simulated(float(options.get("seconds", 8.0))) if kind == "simulated" else None
    return create_app(config, model_factory=factory), config


async def main() -> None:
    import uvicorn
    from starlette.routing import Route

    from bidi_core.serve._run import listening_socket, uvicorn_config

    kind = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    app, config = _app(kind, options)
    app.router.routes.append(Route("/bench-cpu", _cpu))
    sock = listening_socket("127.0.0.1", 0)  # accepted sockets get TCP_NODELAY
    server = uvicorn.Server(uvicorn_config(app, config, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the orchestrator closes stdin
    server.should_exit = True
    server.force_exit = True
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, 10)


if __name__ == "__main__":
    cpu = int(os.environ.get("BENCH_SERVER_CPU", "1"))
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    asyncio.run(main())
