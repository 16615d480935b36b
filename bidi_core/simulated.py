"""The ``simulated`` model: an in-process :class:`~bidi_core.BidiModel` for demos and tests.

It is driven by :class:`bidi_core.testing.ScriptedAssistant` (the same brain every
provider's fake server uses) and needs no network or credentials::

    model = get_model("simulated", provider_config={"pace": 1.0})  # real-time audio

``provider_config`` keys:

* ``audio``: ``{"input_sample_rate": 16000, "output_sample_rate": 24000, "voice": ...}``;
  input at other rates is resampled.
* ``connection_limit_s``: proactive :class:`~bidi_core.BidiModelTimeoutError` after
  this many seconds (default: none).
* Every :class:`~bidi_core.testing.AssistantConfig` field: ``seed``, ``pace``,
  ``story_pace``, ``story_seconds``, ``chunk_ms``, ``speech_threshold``,
  ``silence_ms``, ``time_limit_s``, ``fault_after_turns``, ``fault``.

A time limit (``time_limit_s`` or ``[fault:time_limit]``) raises
``BidiModelTimeoutError(..., resume_handle=...)``; restarting with that
``restart_config`` restores the conversation memory, like provider resumption.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import attrs

from ._base import BidiModelBase
from ._config import (
    check_keys,
    check_model_id,
    check_number,
    check_sample_rate,
    copy_config,
)
from ._errors import BidiConnectionError, ConfigError
from ._simulated_hooks import simulated_capabilities
from .events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from .testing import _assistant as sa
from .types import Messages, ToolSpec

__all__ = ["DEFAULT_MODEL_ID", "SimulatedModel", "simulated_capabilities"]

#: The default ``model_id`` of the simulated model.
DEFAULT_MODEL_ID = "simulated-v1"

# output_sample_rate is set through provider_config["audio"], like every provider.
_ASSISTANT_KEYS = tuple(
    f.name for f in attrs.fields(sa.AssistantConfig) if f.name != "output_sample_rate"
)
#: Resumption handles kept (like providers, only recent handles stay valid).
_KEPT_SNAPSHOTS = 16
_AUDIO_KEYS = ("input_sample_rate", "output_sample_rate", "voice", "channels", "format")


def _rate(audio: dict[str, Any], key: str, default: int) -> int:
    return check_sample_rate(
        audio.get(key, default), where=f"simulated provider_config['audio'][{key!r}]"
    )


class SimulatedModel(BidiModelBase):
    """An in-process model answering with the scripted assistant.

    Args:
        model_id: Free-form; reported in ``BidiConnectionStartEvent.model``.
        provider_config: See the module docs.
        client_config: Accepted for symmetry; must be empty (no credentials needed).
    """

    provider: ClassVar[str] = "simulated"

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            check_keys(
                kwargs, ["model_id", "provider_config", "client_config"], where="SimulatedModel()"
            )
        check_model_id(model_id, where="SimulatedModel", example=DEFAULT_MODEL_ID)
        provider_config = copy_config(provider_config if provider_config is not None else {})
        client_config = copy_config(client_config if client_config is not None else {})
        check_keys(
            provider_config,
            ("audio", "connection_limit_s", *_ASSISTANT_KEYS),
            where="simulated provider_config",
        )
        check_keys(client_config, (), where="simulated client_config")
        audio = provider_config.get("audio", {})
        if not isinstance(audio, dict):
            msg = f"simulated provider_config['audio'] must be a dict (got {audio!r})."
            raise ConfigError(msg)
        check_keys(audio, _AUDIO_KEYS, where="simulated provider_config['audio']")
        in_rate = _rate(audio, "input_sample_rate", 16000)
        out_rate = _rate(audio, "output_sample_rate", 24000)
        if audio.get("channels", 1) != 1 or audio.get("format", "pcm") != "pcm":
            msg = (
                "The simulated model speaks mono PCM16: provider_config['audio'] takes "
                f"channels=1 and format='pcm' (got channels={audio.get('channels', 1)!r}, "
                f"format={audio.get('format', 'pcm')!r})."
            )
            raise ConfigError(msg)
        limit = check_number(
            provider_config.get("connection_limit_s"),
            where="simulated provider_config['connection_limit_s']",
            above=0,
            optional=True,
            unit="seconds",
        )
        assistant_options = {k: provider_config[k] for k in _ASSISTANT_KEYS if k in provider_config}
        assistant_options["output_sample_rate"] = out_rate
        self._assistant_config = sa.AssistantConfig.from_options(
            assistant_options, where="simulated provider_config"
        )
        self.capabilities = simulated_capabilities(
            input_rate=in_rate, output_rate=out_rate, limit=limit
        )
        super().__init__(
            model_id=model_id,
            config={"provider_config": provider_config, "client_config": client_config},
        )
        self._assistant: sa.ScriptedAssistant | None = None
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._last_handle: str | None = None
        self._connections = 0
        self._transcripts: dict[str, str] = {}
        #: ``(response_id, played_ms)`` for every :meth:`truncate` call.
        self.truncations: list[tuple[str, int]] = []

    @property
    def assistant(self) -> sa.ScriptedAssistant | None:
        """The brain of the current connection (for tests to inspect what arrived)."""
        return self._assistant

    def _new_connection_id(self) -> str:
        self._connections += 1
        return f"conn_{self._assistant_config.seed}_{self._connections}"

    def connection_limit_s(self) -> float | None:
        return self.capabilities.connection_limit_s

    def _restart_config(self) -> dict[str, Any]:
        return {"resume_handle": self._last_handle} if self._last_handle else {}

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, ("resume_handle",), where="simulated start() restart_config")
        handle = restart_config.get("resume_handle")
        resume = self._snapshots.get(handle) if handle else None
        if handle and resume is None:
            msg = f"Unknown resume_handle {handle!r}; start without it to begin a new session."
            raise BidiConnectionError(msg, provider=self.provider, code="invalid_handle")
        # A fresh conversation has no handle yet; a resumed one continues from its handle.
        self._last_handle = handle if resume is not None else None
        assistant = sa.ScriptedAssistant(self._assistant_config, connection=self._connections - 1)
        # With a resumption handle the memory comes from the snapshot, not history.
        assistant.start(
            system_prompt=system_prompt,
            tools=tools,
            messages=[] if resume is not None else messages,
            resume=resume,
        )
        self._assistant = assistant
        self._transcripts = {}
        await asyncio.sleep(0)

    async def _read(self) -> None:
        assistant = self._assistant
        assert assistant is not None
        async for action in assistant.actions():
            self._on_action(action)
        # close() ended the actions: only happens on stop.

    def _on_action(self, action: sa.Action) -> None:
        emit = self._emit
        rate = self.capabilities.output_sample_rate
        match action:
            case sa.AudioChunk():
                emit(
                    BidiAudioStreamEvent(
                        audio=action.pcm, sample_rate=rate, response_id=action.response_id
                    )
                )
            case sa.TranscriptDelta():
                so_far = self._transcripts.get(action.item_id, "") + action.text
                self._transcripts[action.item_id] = so_far
                emit(
                    BidiTranscriptStreamEvent(
                        role="assistant",
                        text=action.text,
                        is_final=False,
                        current_transcript=so_far,
                        item_id=action.item_id,
                    )
                )
            case sa.TranscriptFinal():
                self._transcripts.pop(action.item_id, None)
                emit(
                    BidiTranscriptStreamEvent(
                        role="assistant",
                        text=action.text,
                        is_final=True,
                        current_transcript=action.text,
                        item_id=action.item_id,
                    )
                )
            case sa.ResponseStart():
                emit(BidiResponseStartEvent(response_id=action.response_id))
            case sa.ResponseComplete():
                emit(
                    BidiResponseCompleteEvent(
                        response_id=action.response_id, stop_reason=action.stop_reason
                    )
                )
            case sa.ToolCall():
                emit(
                    ToolUseStreamEvent(
                        tool_use={
                            "toolUseId": action.tool_use_id,
                            "name": action.name,
                            "input": action.input,
                        }
                    )
                )
            case sa.ToolCancel():
                emit(BidiToolCancelEvent(tool_use_ids=action.tool_use_ids))
            case sa.Usage():
                emit(
                    BidiUsageEvent(
                        input_tokens=action.input_tokens,
                        output_tokens=action.output_tokens,
                        total_tokens=action.input_tokens + action.output_tokens,
                        input_details={
                            "text": action.input_text_tokens,
                            "audio": action.input_audio_tokens,
                        },
                        output_details={
                            "text": action.output_text_tokens,
                            "audio": action.output_audio_tokens,
                        },
                        cached_tokens=action.cached_tokens,
                    )
                )
            case sa.UserTranscript():
                emit(
                    BidiTranscriptStreamEvent(
                        role="user",
                        text=action.text,
                        is_final=True,
                        current_transcript=action.text,
                        item_id=action.item_id,
                    )
                )
            case sa.Interrupted():
                emit(BidiInterruptionEvent(reason="user_speech", response_id=action.response_id))
            case sa.SessionHandle():
                assert self._assistant is not None
                self._snapshots[action.handle] = self._assistant.snapshot()
                self._last_handle = action.handle
                while len(self._snapshots) > _KEPT_SNAPSHOTS:  # oldest first (dict order)
                    del self._snapshots[next(iter(self._snapshots))]
            case sa.Fault(kind="error"):
                emit(BidiErrorEvent(message=action.message, code=action.code, recoverable=True))
            case sa.Fault(kind="malformed"):
                emit(
                    BidiErrorEvent(
                        message="The simulated provider sent a malformed frame; it was skipped.",
                        code="malformed_frame",
                        recoverable=True,
                    )
                )
            case sa.Fault(kind="disconnect"):
                self._fail(
                    BidiConnectionError(
                        "The simulated connection dropped abruptly.",
                        provider=self.provider,
                        code=action.code,
                        retryable=True,
                    )
                )
            case sa.Fault(kind="time_limit"):
                self._fail(self._timeout_error(f"simulated: {action.message}"))
            case _:
                pass  # speech start/stop markers carry nothing the events need

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        assistant = self._assistant
        assert assistant is not None
        if isinstance(event, BidiTextInputEvent):
            assistant.user_text(event.text)
        elif isinstance(event, BidiAudioInputEvent):
            assistant.user_audio(event.audio, event.sample_rate)
        elif isinstance(event, BidiImageInputEvent):
            assistant.user_image(event.raw_bytes(), event.mime_type)
        else:
            result = event.tool_result
            assistant.tool_result(result["toolUseId"], result)
        await asyncio.sleep(0)

    async def truncate(self, response_id: str, played_ms: int) -> None:
        """Record that only ``played_ms`` of ``response_id`` was heard."""
        self._require_open("truncate a response")
        self.truncations.append((response_id, max(0, int(played_ms))))

    async def _close(self, *, graceful: bool) -> None:
        if self._assistant is not None:
            self._assistant.close()
