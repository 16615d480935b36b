"""The bidi testing kit: the scripted assistant, the conformance suite and fake-server helpers.

* :class:`ScriptedAssistant`: the deterministic brain every fake server and the
  ``simulated`` model share.
* :func:`check_model`: the conformance suite any plugin runs against its fake
  (importing it does not import pytest).
* :mod:`bidi_core.testing.speech`: a toy text <-> PCM codec so spoken input is
  transcribed exactly.
* :func:`fault_cases` (:mod:`bidi_core.testing.faults`): the fault matrix (disconnect,
  malformed frame, provider error, time limit, slow server, slow consumer, stalled
  handshake) any plugin runs against its fake, each with a defined outcome and a
  leak check (importing it does not import pytest).
* :class:`FakeServer` / :func:`load_fake`: the contract of each plugin's fake server.
* :mod:`bidi_core.testing.scenarios`: agent-level scenarios every plugin runs against its
  fake (a non-blocking tool; an MCP tool with recording and telemetry).
* :mod:`bidi_core.testing.mcp_server`: a real MCP server (``python -m
  bidi_core.testing.mcp_server``; needs ``bidi-core[mcp]``).
* :func:`free_port`, :func:`loopback_tls` (``bidi-core[testing]``): for fake servers;
  :func:`resolve_to_loopback` maps a provider's real host name to a fake (default-path tests).
"""

from __future__ import annotations

from ._assistant import (
    Action,
    AssistantConfig,
    AudioChunk,
    Fault,
    Interrupted,
    ResponseComplete,
    ResponseStart,
    ScriptedAssistant,
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
from ._fake import FakeServer, ServeFake, load_fake
from ._net import LoopbackTLS, free_port, loopback_tls, resolve_to_loopback
from .conformance import ConformanceCase, ConformanceError, check_model, conformance_cases
from .faults import FaultCase, FaultCaseError, fault_cases
from .speech import speak, transcribe

__all__ = [
    "Action",
    "AssistantConfig",
    "AudioChunk",
    "ConformanceCase",
    "ConformanceError",
    "FakeServer",
    "Fault",
    "FaultCase",
    "FaultCaseError",
    "Interrupted",
    "LoopbackTLS",
    "ResponseComplete",
    "ResponseStart",
    "ScriptedAssistant",
    "ServeFake",
    "SessionHandle",
    "ToolCall",
    "ToolCancel",
    "TranscriptDelta",
    "TranscriptFinal",
    "Usage",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "UserTranscript",
    "check_model",
    "conformance_cases",
    "fault_cases",
    "free_port",
    "load_fake",
    "loopback_tls",
    "resolve_to_loopback",
    "speak",
    "transcribe",
]
