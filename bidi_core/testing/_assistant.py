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
from typing import Any, Literal, TypeAlias

import attrs

from .._config import check_keys, check_number, check_sample_rate
from .._errors import ConfigError
from ..audio import rms
from ..types import Messages, ToolResult, ToolSpec
from .speech import speak, transcribe

__all__ = [
    "Action",
    "AssistantConfig",
    "AudioChunk",
    "Fault",
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

FaultKind: TypeAlias = Literal["error", "disconnect", "malformed", "time_limit"]
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


_FAULT_KINDS = ("error", "disconnect", "malformed", "time_limit")


def _number(low: float, *, above: bool = False, optional: bool = False) -> Any:
    """An attrs validator: a finite number >= *low* (> *low* if *above*), or None if *optional*."""

    def check(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        bounds: dict[str, Any] = {"above": low} if above else {"minimum": low}
        check_number(value, where=repr(attribute.name), optional=optional, **bounds)

    return check


def _sample_rate(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_sample_rate(value, where=repr(attribute.name))


def _fault_kind(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in _FAULT_KINDS:
        msg = f"{attribute.name!r} must be one of {', '.join(_FAULT_KINDS)} (got {value!r})."
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class AssistantConfig:
    """Behaviour knobs of :class:`ScriptedAssistant` (all keyword-only).

    Attributes:
        seed: Makes ids deterministic.
        output_sample_rate: PCM rate of spoken answers.
        chunk_ms: Duration of each :class:`AudioChunk`.
        pace: Seconds waited per second of answer audio (0 = as fast as possible,
            1.0 = real time). Long answers (``story``) are paced at least ``story_pace``.
        story_pace: Minimum pace of long answers, so tests can interrupt them.
        story_seconds: Length of a long answer.
        speech_threshold: RMS level above which input audio counts as speech.
        silence_ms: Quiet audio after speech that ends an utterance.
        time_limit_s: Emit a ``time_limit`` :class:`Fault` this long after start.
        fault_after_turns: Inject ``fault`` after this many answered turns.
        fault: The fault kind for ``fault_after_turns``.
        action_delay_s: Seconds waited before every action (on top of ``pace``), to
            emulate a slow server whose frames trickle in.
    """

    seed: int = 0
    output_sample_rate: int = attrs.field(default=24000, validator=_sample_rate)
    chunk_ms: int = attrs.field(default=20, validator=_number(0, above=True))
    pace: float = attrs.field(default=0.0, validator=_number(0))
    story_pace: float = attrs.field(default=0.25, validator=_number(0))
    story_seconds: float = attrs.field(default=30.0, validator=_number(0, above=True))
    speech_threshold: float = attrs.field(default=500.0, validator=_number(0))
    silence_ms: int = attrs.field(default=300, validator=_number(0))
    time_limit_s: float | None = attrs.field(
        default=None, validator=_number(0, above=True, optional=True)
    )
    fault_after_turns: int | None = attrs.field(default=None, validator=_number(1, optional=True))
    fault: FaultKind = attrs.field(default="error", validator=_fault_kind)
    action_delay_s: float = attrs.field(default=0.0, validator=_number(0))

    @classmethod
    def from_options(cls, options: dict[str, Any], *, where: str) -> AssistantConfig:
        """Build a config from a plain dict, rejecting unknown keys and bad values.

        Raises:
            ConfigError: A key is unknown or a value is out of range.
        """
        check_keys(options, [f.name for f in attrs.fields(cls)], where=where)
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            msg = f"Invalid value in {where}: {exc}"
            raise ConfigError(msg) from exc


# ------------------------------------------------------------------- actions


@attrs.frozen(kw_only=True)
class ResponseStart:
    """The assistant starts a response."""

    response_id: str


@attrs.frozen(kw_only=True)
class TranscriptDelta:
    """Part of the assistant's answer text."""

    response_id: str
    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class TranscriptFinal:
    """The assistant's whole answer text."""

    response_id: str
    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class AudioChunk:
    """A chunk of the assistant's spoken answer (PCM16 mono)."""

    response_id: str
    item_id: str
    pcm: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    sample_rate: int


@attrs.frozen(kw_only=True)
class ToolCall:
    """The assistant calls a tool."""

    response_id: str
    tool_use_id: str
    name: str
    input: dict[str, Any]


@attrs.frozen(kw_only=True)
class ToolCancel:
    """The assistant withdraws pending tool calls."""

    tool_use_ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ResponseComplete:
    """The response ended (``complete``, ``interrupted`` or ``tool_use``)."""

    response_id: str
    stop_reason: Literal["complete", "interrupted", "tool_use", "error"]


@attrs.frozen(kw_only=True)
class Usage:
    """Token usage of one response (incremental)."""

    response_id: str
    input_text_tokens: int
    input_audio_tokens: int
    output_text_tokens: int
    output_audio_tokens: int
    cached_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        """All input tokens."""
        return self.input_text_tokens + self.input_audio_tokens

    @property
    def output_tokens(self) -> int:
        """All output tokens."""
        return self.output_text_tokens + self.output_audio_tokens


@attrs.frozen(kw_only=True)
class UserSpeechStarted:
    """Speech was detected in the input audio."""

    item_id: str
    audio_start_ms: int


@attrs.frozen(kw_only=True)
class UserSpeechStopped:
    """The user's utterance ended."""

    item_id: str
    audio_end_ms: int


@attrs.frozen(kw_only=True)
class UserTranscript:
    """What the user said (input transcription), final."""

    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class Interrupted:
    """The user barged in on an active response; its remaining output is dropped."""

    response_id: str


@attrs.frozen(kw_only=True)
class SessionHandle:
    """A resumption handle: ``start(resume=...)`` with the snapshot restores memory."""

    handle: str


@attrs.frozen(kw_only=True)
class Fault:
    """An injected fault for the driver to produce in its wire format."""

    kind: FaultKind
    message: str
    code: str


Action: TypeAlias = (
    ResponseStart
    | TranscriptDelta
    | TranscriptFinal
    | AudioChunk
    | ToolCall
    | ToolCancel
    | ResponseComplete
    | Usage
    | UserSpeechStarted
    | UserSpeechStopped
    | UserTranscript
    | Interrupted
    | SessionHandle
    | Fault
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
        """Take a tool result; answer once every call of that response has one."""
        self.inputs.append(("tool_result", tool_use_id))
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

    def _respond_to(self, text: str, *, audio_ms: float | None = None) -> None:
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
        self._awaiting[response_id] = calls
        self._tool_names.update(zip(calls, names, strict=True))

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
