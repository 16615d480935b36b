"""``ScriptedAssistant``: the deterministic conversation brain behind every fake.

The simulated model and every provider's fake server drive the same brain, so
one script gives the same normalized events from every provider. A driver feeds
it normalized input (:meth:`~ScriptedAssistant.user_text`,
:meth:`~ScriptedAssistant.user_audio`, :meth:`~ScriptedAssistant.tool_result`)
and translates each :class:`Action` from :meth:`~ScriptedAssistant.actions` to
its wire format.

The script (what the assistant does):

* Text that names one or more of the given tools calls them (arguments from the
  first ``{...}`` JSON object in the text, else ``{}``), in one response with
  ``stop_reason="tool_use"``; once every result is in, it answers
  ``"<name> returned <result text>."``. Adding ``[then cancel]`` makes it
  withdraw the calls at once (:class:`ToolCancel`).
* A tool whose spec says ``"blocking": False`` (a non-blocking tool) does not hold
  the answer back: after the call the assistant says ``"I started <name>; I will
  tell you when it is done."`` and takes other turns meanwhile. Its result is
  answered according to its ``scheduling`` (the tool spec's, or the result's own):
  ``"interrupt"`` cuts off the current answer and answers at once, ``"when_idle"``
  answers after the current answer, ``"silent"`` only records it
  (:attr:`ScriptedAssistant.silent_results`). A result with ``"progress": True`` is
  an update (``"<name> reports: <text>."``) and the call stays open.
* A user text made by the agent for a result that arrives late (``"(The earlier
  call of <name> [<id>] finished with ...: <text>)"``, see
  :func:`bidi_core._nonblocking.late_result_text`) is answered like a tool result
  (``"<name> returned <text>."``; an update as ``"<name> reports: <text>."``; no
  answer when it says no reply is needed), never as a new request.
* Text containing ``story`` gets a long answer, paced so it can be interrupted.
* Text containing ``recall`` gets ``"Earlier you said: <previous user text>."``,
  using history passed to ``start()`` (or a resumed snapshot).
* ``[fault:error]``, ``[fault:disconnect]``, ``[fault:malformed]`` and
  ``[fault:time_limit]`` inject that :class:`Fault`. Sent through ``BidiAgent``, a
  directive that ends the connection before an answer fires twice: the agent sends an
  unanswered turn again once after a restart (use :meth:`inject_fault` for one).
* Anything else gets ``"You said: <text>."``.
* Audio is scanned for speech by energy: speech start while a response is
  active interrupts it (:class:`Interrupted`); after ``silence_ms`` of quiet the
  utterance is transcribed with :mod:`bidi_core.testing.speech` and answered as
  text.

Every answer streams transcript deltas, a final transcript, synthesized PCM16
audio (:func:`~bidi_core.testing.speech.speak` of the answer) at
``output_sample_rate``, then :class:`Usage` and :class:`ResponseComplete`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs

from .._nonblocking import LateResult, parse_late_result
from ..audio import rms
from ..types import Messages, ToolResult, ToolSpec
from ._actions import (
    _FAULT_KINDS,
    Action,
    AssistantConfig,
    AudioChunk,
    Fault,
    FaultKind,
    Interrupted,
    ResponseComplete,
    ResponseStart,
    SessionHandle,
    ToolCall,
    ToolCancel,
    TranscriptDelta,
    TranscriptFinal,
    Usage,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from .speech import speak, transcribe

__all__ = [
    "Action",
    "AssistantConfig",
    "AudioChunk",
    "Fault",
    "FaultKind",
    "Interrupted",
    "ResponseComplete",
    "ResponseStart",
    "ScriptedAssistant",
    "SessionHandle",
    "ToolCall",
    "ToolCancel",
    "TranscriptDelta",
    "TranscriptFinal",
    "Usage",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "UserTranscript",
    "without_faults",
]

_FAULT_RE = re.compile(r"\[fault:(error|disconnect|malformed|time_limit)\]")
_SENTENCE_END = (".", "!", "?", "\u2026")


def without_faults(text: str) -> str:
    """*text* without its ``[fault:...]`` directives (for replayed history: they fired once)."""
    return " ".join(_FAULT_RE.sub(" ", text).split())


def _sentence(text: str) -> str:
    """*text* ending with one full stop, unless it already ends a sentence (no "?.")."""
    text = text.rstrip()
    return text if text.endswith(_SENTENCE_END) else text + "."


_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)
_STORY = (
    "once upon a time a small robot learned to listen before it spoke, "
    "and it listened for a very long time. "
)


@attrs.define
class _Pending:
    action: Action
    delay: float = 0.0


class ScriptedAssistant:
    """A deterministic, provider-agnostic conversation brain (see the module docs).

    Args:
        config: Behaviour knobs; defaults to :class:`AssistantConfig()`.
        connection: The number of this connection (0 for the first). Fakes create
            one assistant per connection; the number keeps ids (responses, items,
            tool calls, handles) unique across connections, as a real provider's are,
            while staying deterministic given the seed.
    """

    def __init__(self, config: AssistantConfig | None = None, *, connection: int = 0) -> None:
        self.config = config or AssistantConfig()
        self.connection = connection
        self._id_scope = (
            f"{self.config.seed}" if connection == 0 else f"{self.config.seed}c{connection}"
        )
        self._rng = random.Random(
            f"{self.config.seed}:{connection}" if connection else self.config.seed
        )
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._started_at = 0.0
        self._counter = 0
        self._tools: dict[str, ToolSpec] = {}
        self._history_user_texts: list[str] = []
        self._active: str | None = None
        self._cancelled: set[str] = set()
        #: Responses whose ResponseStart was yielded and whose ResponseComplete was not.
        self._started: list[str] = []
        self._awaiting: dict[str, dict[str, ToolResult | None]] = {}
        self._tool_names: dict[str, str] = {}
        #: Open calls of non-blocking tools: id -> (name, the tool's scheduling).
        self._background: dict[str, tuple[str, str]] = {}
        #: Results that arrived with ``"silent"`` scheduling: recorded, not answered.
        self.silent_results: list[ToolResult] = []
        self._speech: list[bytes] = []
        self._speech_rate = 0
        self._speech_item: str | None = None
        self._silence_ms = 0.0
        self._audio_ms = 0.0
        self._turns = 0
        #: Every normalized input received, in order: ``(kind, value)``.
        self.inputs: list[tuple[str, Any]] = []
        #: The system prompt, tools and history of the current connection.
        self.system_prompt: str | None = None
        self.tools: list[ToolSpec] = []
        self.history: Messages = []

    # -------------------------------------------------------------- helpers

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._id_scope}_{self._counter}_{self._rng.randrange(16**6):06x}"

    def _push(self, action: Action, delay: float = 0.0) -> None:
        self._queue.append(_Pending(action, delay))
        self._wakeup.set()

    def _push_front(self, *actions: Action) -> None:
        for action in reversed(actions):
            self._queue.appendleft(_Pending(action))
        self._wakeup.set()

    # ------------------------------------------------------------ lifecycle

    def start(
        self,
        *,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] = (),
        messages: Messages | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        """Begin a connection with instructions, tools, history or a resumed snapshot."""
        self._started_at = time.monotonic()
        self.system_prompt = system_prompt
        self.tools = list(tools)
        self._tools = {t["name"]: t for t in self.tools}
        self.history = list(messages or [])
        texts: list[str] = list((resume or {}).get("user_texts", []))
        for message in self.history:
            if message.get("role") == "user":
                texts.extend(b["text"] for b in message.get("content", []) if "text" in b)
        self._history_user_texts = texts

    def set_tools(self, tools: Sequence[ToolSpec]) -> None:
        """Replace the tools mid-connection (a provider's tool update)."""
        self.tools = list(tools)
        self._tools = {t["name"]: t for t in self.tools}

    def snapshot(self) -> dict[str, Any]:
        """Return the memory a resumed connection restores (JSON-safe)."""
        return {"user_texts": list(self._history_user_texts)}

    def close(self) -> None:
        """End :meth:`actions`."""
        self._closed = True
        self._wakeup.set()

    def inject_fault(self, kind: FaultKind) -> None:
        """Queue a :class:`Fault` of *kind* ahead of every pending action.

        The fault is produced right after the action being sent now, so a test can
        break the connection (``disconnect``), send garbage (``malformed``), report a
        provider error (``error``) or end the connection (``time_limit``) while a
        response is streaming; the driver maps it to its wire signal as usual.

        Raises:
            ValueError: *kind* is not a fault kind.
        """
        if kind not in _FAULT_KINDS:
            msg = f"Unknown fault kind {kind!r}; use one of {', '.join(_FAULT_KINDS)}."
            raise ValueError(msg)
        self._push_front(self._fault(kind))

    @property
    def response_active(self) -> bool:
        """Whether a response is being produced and has not completed."""
        return self._active is not None

    # --------------------------------------------------------------- inputs

    def user_text(self, text: str) -> None:
        """Take a user text turn and queue the answer."""
        self.inputs.append(("text", text))
        self._respond_to(text)

    def user_audio(self, pcm: bytes, sample_rate: int) -> None:
        """Take a chunk of user audio (PCM16 mono): detect speech, barge-in and turn ends."""
        self.inputs.append(("audio", len(pcm)))
        chunk_ms = len(pcm) / 2 / sample_rate * 1000.0
        start_ms = self._audio_ms
        self._audio_ms += chunk_ms
        loud = rms(pcm) > self.config.speech_threshold
        if self._speech_item is None:
            if not loud:
                return
            self._speech_item = self._id("item")
            self._speech = []
            self._speech_rate = sample_rate
            self._silence_ms = 0.0
            self._push(UserSpeechStarted(item_id=self._speech_item, audio_start_ms=int(start_ms)))
            self._interrupt()
        if sample_rate == self._speech_rate:
            self._speech.append(pcm)
        self._silence_ms = 0.0 if loud else self._silence_ms + chunk_ms
        if self._silence_ms >= self.config.silence_ms:
            self.end_of_audio()

    def end_of_audio(self) -> None:
        """The user's audio stream paused: finish any utterance in progress now."""
        item = self._speech_item
        if item is None:
            return
        self._speech_item = None
        self._push(UserSpeechStopped(item_id=item, audio_end_ms=int(self._audio_ms)))
        speech = b"".join(self._speech)
        self._speech = []
        text = transcribe(speech, self._speech_rate).strip() or "(inaudible)"
        self._push(UserTranscript(item_id=item, text=text))
        self._respond_to(text, audio_ms=len(speech) / 2 / self._speech_rate * 1000.0)

    def user_image(self, image: bytes, mime_type: str) -> None:
        """Take an image (recorded; the script does not answer images)."""
        self.inputs.append(("image", (mime_type, len(image))))

    def tool_result(self, tool_use_id: str, result: ToolResult | None = None) -> None:
        """Take a tool result; answer once every call of that response has one.

        The result of a non-blocking call is answered on its own, by its scheduling.
        """
        self.inputs.append(("tool_result", tool_use_id))
        if tool_use_id in self._background:
            self._background_result(tool_use_id, result)
            return
        for response_id, calls in list(self._awaiting.items()):
            if tool_use_id in calls:
                calls[tool_use_id] = result or {
                    "toolUseId": tool_use_id,
                    "status": "success",
                    "content": [],
                }
                if all(r is not None for r in calls.values()):
                    del self._awaiting[response_id]
                    self._answer_tools(calls)
                return
        self._speak_response(f"I got a result for {tool_use_id}, which I did not ask for.")

    # --------------------------------------------------------------- script

    def _interrupt(self) -> None:
        active = self._active
        if active is None:
            return
        # Everything not yet sent of this and any queued response is dropped.
        dropped = {active} | {
            rid
            for p in self._queue
            if isinstance(p.action, AudioChunk | TranscriptDelta)
            for rid in (p.action.response_id,)
        }
        self._cancelled |= dropped
        self._queue = collections.deque(
            p for p in self._queue if getattr(p.action, "response_id", None) not in dropped
        )
        self._active = None
        # Only responses that were already announced get an (interrupted) completion;
        # the others vanish without a trace, as if never begun.
        started = [rid for rid in self._started if rid in dropped]
        if not started:
            return
        self._push_front(
            Interrupted(response_id=started[0]),
            *(ResponseComplete(response_id=rid, stop_reason="interrupted") for rid in started),
        )

    def _background_result(self, tool_use_id: str, result: ToolResult | None) -> None:
        name, default = self._background[tool_use_id]
        result = result or {"toolUseId": tool_use_id, "status": "success", "content": []}
        progress = bool(result.get("progress"))
        if not progress:
            del self._background[tool_use_id]
        scheduling = result.get("scheduling") or default
        if scheduling == "silent":
            self.silent_results.append(result)
            return
        if scheduling == "interrupt":
            self._interrupt()
        verb = "reports" if progress else "returned"
        self._speak_response(_sentence(f"{name} {verb} {_result_text(result)}"))

    def _answer_late(self, late: LateResult) -> None:
        """Answer a result the agent delivered as text (emulated non-blocking, restart)."""
        if late.silent:
            self.silent_results.append(
                {
                    "toolUseId": late.tool_use_id,
                    "status": "success",
                    "content": [{"text": late.text}],
                }
            )
            return
        if late.progress:
            self._speak_response(_sentence(f"{late.name} reports {late.text}"))
            return
        said = f"an error: {late.text}" if late.status == "error" else late.text
        self._speak_response(_sentence(f"{late.name} returned {said}"))

    def _respond_to(self, text: str, *, audio_ms: float | None = None) -> None:
        late = parse_late_result(text)
        if late is not None:
            self._answer_late(late)
            return
        fault = _FAULT_RE.search(text)
        if fault is not None:
            kind: FaultKind = fault.group(1)  # type: ignore[assignment]
            self._push(self._fault(kind))
            return
        lowered = text.lower()
        called = [
            name for name in self._tools if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)
        ]
        previous = self._history_user_texts[-1] if self._history_user_texts else None
        self._history_user_texts.append(text)
        if called:
            self._call_tools(called, text)
            return
        if "recall" in lowered:
            said = _sentence(f"Earlier you said: {previous}") if previous else None
            answer = said or "You have not said anything."
            self._speak_response(answer, input_text=text, audio_ms=audio_ms)
        elif "story" in lowered:
            repeats = max(1, int(self.config.story_seconds / (len(_STORY) * 0.04)) + 1)
            self._speak_response(_STORY * repeats, input_text=text, audio_ms=audio_ms, long=True)
        else:
            self._speak_response(_sentence(f"You said: {text}"), input_text=text, audio_ms=audio_ms)

    def _fault(self, kind: FaultKind) -> Fault:
        messages = {
            "error": ("Injected recoverable error.", "injected_error"),
            "disconnect": ("Injected abrupt disconnect.", "injected_disconnect"),
            "malformed": ("Injected malformed frame.", "injected_malformed"),
            "time_limit": ("Connection time limit reached.", "time_limit"),
        }
        message, code = messages[kind]
        return Fault(kind=kind, message=message, code=code)

    def _call_tools(self, names: list[str], text: str) -> None:
        args: dict[str, Any] = {}
        match = _JSON_RE.search(text)
        if match is not None:
            try:
                parsed = json.loads(match.group(0))
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                args = parsed
        response_id = self._id("resp")
        self._push(ResponseStart(response_id=response_id))
        calls: dict[str, ToolResult | None] = {}
        for name in names:
            tool_use_id = self._id("call")
            calls[tool_use_id] = None
            self._push(
                ToolCall(response_id=response_id, tool_use_id=tool_use_id, name=name, input=args)
            )
        words = len(text.split())
        self._push(
            Usage(
                response_id=response_id,
                input_text_tokens=words,
                input_audio_tokens=0,
                output_text_tokens=4 * len(names),
                output_audio_tokens=0,
            )
        )
        self._push(ResponseComplete(response_id=response_id, stop_reason="tool_use"))
        if "[then cancel]" in text:
            self._push(ToolCancel(tool_use_ids=tuple(calls)))
            return
        named = dict(zip(calls, names, strict=True))
        background = {i: n for i, n in named.items() if self._tools[n].get("blocking") is False}
        for tool_use_id, name in background.items():
            scheduling = str(self._tools[name].get("scheduling") or "when_idle")
            self._background[tool_use_id] = (name, scheduling)
            del calls[tool_use_id]
        if calls:
            self._awaiting[response_id] = calls
            self._tool_names.update({i: named[i] for i in calls})
        elif background:
            started = " and ".join(dict.fromkeys(background.values()))
            self._speak_response(f"I started {started}; I will tell you when it is done.")

    def _answer_tools(self, calls: dict[str, ToolResult | None]) -> None:
        parts = []
        for tool_use_id, result in calls.items():
            name = self._tool_names.pop(tool_use_id, "the tool")
            parts.append(f"{name} returned {_result_text(result)}")
        self._speak_response(_sentence("; ".join(parts)), input_text="")

    def _speak_response(
        self,
        answer: str,
        *,
        input_text: str = "",
        audio_ms: float | None = None,
        long: bool = False,
    ) -> None:
        response_id = self._id("resp")
        item_id = self._id("item")
        self._active = response_id
        cfg = self.config
        rate = cfg.output_sample_rate
        pace = max(cfg.pace, cfg.story_pace) if long else cfg.pace
        chunk_bytes = max(2, rate * cfg.chunk_ms // 1000 * 2)
        self._push(ResponseStart(response_id=response_id))
        words = answer.split(" ")
        audio_total = 0
        for index, word in enumerate(words):
            piece = word if index == len(words) - 1 else word + " "
            if not piece:
                continue
            self._push(TranscriptDelta(response_id=response_id, item_id=item_id, text=piece))
            pcm = speak(piece, rate)
            audio_total += len(pcm)
            for offset in range(0, len(pcm), chunk_bytes):
                chunk = pcm[offset : offset + chunk_bytes]
                delay = pace * len(chunk) / 2 / rate
                self._push(
                    AudioChunk(
                        response_id=response_id, item_id=item_id, pcm=chunk, sample_rate=rate
                    ),
                    delay,
                )
        self._push(TranscriptFinal(response_id=response_id, item_id=item_id, text=answer))
        self._push(
            Usage(
                response_id=response_id,
                input_text_tokens=0 if audio_ms is not None else len(input_text.split()),
                input_audio_tokens=0 if audio_ms is None else int(audio_ms // 100),
                output_text_tokens=len(words),
                output_audio_tokens=audio_total // 2 * 1000 // rate // 50,
            )
        )
        self._push(ResponseComplete(response_id=response_id, stop_reason="complete"))
        self._push(SessionHandle(handle=self._id("handle")))
        self._turns += 1
        if cfg.fault_after_turns is not None and self._turns == cfg.fault_after_turns:
            self._push(self._fault(cfg.fault))

    # -------------------------------------------------------------- output

    async def actions(self) -> AsyncIterator[Action]:
        """Yield the assistant's actions, paced, until :meth:`close`.

        A ``time_limit`` :class:`Fault` is yielded when ``config.time_limit_s``
        has passed since :meth:`start`.
        """
        limit = self.config.time_limit_s
        deadline = None if limit is None else self._started_at + limit
        while not self._closed:
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None
                yield self._fault("time_limit")
                continue
            if not self._queue:
                self._wakeup.clear()
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    async with asyncio.timeout(timeout):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue
            pending = self._queue.popleft()
            action = pending.action
            delay = pending.delay + self.config.action_delay_s
            if delay > 0:
                await asyncio.sleep(delay)
            if getattr(action, "response_id", None) in self._cancelled and not isinstance(
                action, Interrupted | ResponseComplete
            ):
                continue
            if isinstance(action, ResponseStart):
                self._started.append(action.response_id)
            elif isinstance(action, ResponseComplete):
                if action.response_id in self._started:
                    self._started.remove(action.response_id)
                if action.response_id == self._active:
                    self._active = None
            yield action


def _result_text(result: ToolResult | None) -> str:
    if not result:
        return "nothing"
    pieces = []
    for item in result.get("content", []):
        if "text" in item:
            pieces.append(str(item["text"]))
        elif "json" in item:
            pieces.append(json.dumps(item["json"], sort_keys=True))
    text = " ".join(pieces) or "nothing"
    if result.get("status") == "error":
        return f"an error: {text}"
    return text
