"""bidi: bidirectional streaming (realtime speech-to-speech) models.

The core defines the model protocol, the event schema, the plugin registry and
the testing kit; providers ship as plugins discovered through the ``bidi``
entry-point group::

    from bidi_core import get_model, BidiTextInputEvent

    model = get_model("simulated")
    await model.start(system_prompt="You are terse.")
    await model.send(BidiTextInputEvent(text="Hello"))
    async for event in model.receive():
        ...
    await model.stop()

Importing this package imports no provider SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AudioDeviceError,
    AudioFormatError,
    AuthenticationError,
    BidiConnectionError,
    BidiError,
    BidiModelStateError,
    BidiModelTimeoutError,
    ConfigError,
    DuplicateModelError,
    MissingCredentialsError,
    MissingDependencyError,
    PluginError,
    PluginLoadError,
    ProviderError,
    ProviderProtocolError,
    ToolError,
    UnknownModelError,
    UnsupportedInputError,
)
from ._protocol import BidiModel, Modality, ModelCapabilities, SupportsTruncation
from ._registry import ModelInfo, Registry, default_registry, get_model, list_models
from ._secret import Secret
from ._version import __version__
from .hookspecs import RegisterModel, hookimpl

if TYPE_CHECKING:
    from ._base import BidiModelBase, ModelState
    from .agent import AgentStats, BidiAgent
    from .events import (
        BidiAudioDroppedEvent,
        BidiAudioInputEvent,
        BidiAudioStreamEvent,
        BidiConnectionCloseEvent,
        BidiConnectionRestartEvent,
        BidiConnectionStartEvent,
        BidiErrorEvent,
        BidiEvent,
        BidiImageInputEvent,
        BidiInputEvent,
        BidiInterruptionEvent,
        BidiOutputEvent,
        BidiResponseCompleteEvent,
        BidiResponseStartEvent,
        BidiServerToolEvent,
        BidiTextInputEvent,
        BidiToolCancelEvent,
        BidiTranscriptStreamEvent,
        BidiUsageEvent,
        EventDecodeError,
        ToolResultEvent,
        ToolUseStreamEvent,
    )
    from .tools import AgentTool, ToolProgress, tool
    from .types import ContentBlock, Message, Messages, Scheduling, ToolResult, ToolSpec, ToolUse

# What ``import bidi_core; bidi_core.list_models()`` needs is imported above; the rest
# (the event schema and its ~20 attrs classes, asyncio for the base class and the
# agent, the tools) is imported on first use, so listing models stays fast.
_EVENTS = (
    "BidiAudioDroppedEvent",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiConnectionCloseEvent",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiErrorEvent",
    "BidiEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiOutputEvent",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiServerToolEvent",
    "BidiTextInputEvent",
    "BidiToolCancelEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "EventDecodeError",
    "ToolResultEvent",
    "ToolUseStreamEvent",
)
_TYPES = (
    "ContentBlock",
    "Message",
    "Messages",
    "Scheduling",
    "ToolResult",
    "ToolSpec",
    "ToolUse",
)
_LAZY = {
    **dict.fromkeys(_EVENTS, ".events"),
    **dict.fromkeys(_TYPES, ".types"),
    "AgentStats": ".agent",
    "AgentTool": ".tools",
    "BidiAgent": ".agent",
    "BidiModelBase": "._base",
    "ModelState": "._base",
    "ToolProgress": ".tools",
    "tool": ".tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'bidi_core' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AgentStats",
    "AgentTool",
    "AudioDeviceError",
    "AudioFormatError",
    "AuthenticationError",
    "BidiAgent",
    "BidiAudioDroppedEvent",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiConnectionCloseEvent",
    "BidiConnectionError",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiError",
    "BidiErrorEvent",
    "BidiEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiModel",
    "BidiModelBase",
    "BidiModelStateError",
    "BidiModelTimeoutError",
    "BidiOutputEvent",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiServerToolEvent",
    "BidiTextInputEvent",
    "BidiToolCancelEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "ConfigError",
    "ContentBlock",
    "DuplicateModelError",
    "EventDecodeError",
    "Message",
    "Messages",
    "MissingCredentialsError",
    "MissingDependencyError",
    "Modality",
    "ModelCapabilities",
    "ModelInfo",
    "ModelState",
    "PluginError",
    "PluginLoadError",
    "ProviderError",
    "ProviderProtocolError",
    "RegisterModel",
    "Registry",
    "Scheduling",
    "Secret",
    "SupportsTruncation",
    "ToolError",
    "ToolProgress",
    "ToolResult",
    "ToolResultEvent",
    "ToolSpec",
    "ToolUse",
    "ToolUseStreamEvent",
    "UnknownModelError",
    "UnsupportedInputError",
    "__version__",
    "default_registry",
    "get_model",
    "hookimpl",
    "list_models",
    "tool",
]
