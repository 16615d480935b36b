"""Nova Sonic constants, capabilities and configuration parsing (no SDK imports).

Everything here is importable by ``_hooks.py`` without pulling in boto3 or the
Bedrock SDK, so ``bidi_core.list_models()`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import attrs

from bidi_core import ConfigError, MissingCredentialsError
from bidi_core._config import check_json, check_keys, check_number, copy_config

from ._capabilities import (
    CA_BUNDLE_ENV,
    CAPABILITIES,
    CREDENTIAL_ENVS,
    DEFAULT_MODEL_ID,
    ENDPOINT_ENVS,
    NOVA_2_MODEL_ID,
    PROVIDER_LIMIT_S,
    REGION_ENVS,
    capabilities_for,
    is_nova_2,
)

__all__ = [
    "CAPABILITIES",
    "CA_BUNDLE_ENV",
    "CLIENT_KEYS",
    "CREDENTIAL_ENVS",
    "DEFAULT_MODEL_ID",
    "ENDPOINT_ENVS",
    "NOVA_2_MODEL_ID",
    "NovaSettings",
    "REGION_ENVS",
    "Target",
    "capabilities_for",
    "is_nova_2",
    "parse_settings",
    "resolve_target",
]

#: Default proactive restart, before the provider's limit cuts an answer off.
DEFAULT_CONNECTION_LIMIT_S: Final = 460.0
INPUT_RATES: Final = (16000, 8000)
OUTPUT_RATES: Final = (24000, 16000, 8000)
DEFAULT_VOICE: Final = "matthew"
DEFAULT_INFERENCE: Final[dict[str, Any]] = {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
ENDPOINTING_SENSITIVITIES: Final = ("HIGH", "MEDIUM", "LOW")

_PROVIDER_KEYS = (
    "audio",
    "connection_limit_s",
    "history",
    "inference",
    "max_error_recoveries",
    "prompt",
    "session",
    "turn_detection",
)
_AUDIO_KEYS = (
    "channels",
    "format",
    "input_sample_rate",
    "output_sample_rate",
    "replay_ms",
    "voice",
)
#: Audio sent this long before the client saw the service end a stream is sent again
#: on the next stream: the service drops what was in flight (loopback: ~3 chunks).
DEFAULT_REPLAY_MS: Final = 500
MAX_REPLAY_MS: Final = 5000
_HISTORY_KEYS = ("max_message_bytes", "max_messages", "max_total_bytes")
#: client_config keys of the transport (the model adds ``open_timeout``).
CLIENT_KEYS = ("boto_session", "ca_bundle", "endpoint_uri", "region")


@attrs.frozen(kw_only=True)
class HistoryLimits:
    """How much history is replayed into a new Nova session (oldest dropped first).

    Attributes:
        max_messages: Messages kept (Nova accepts about 40).
        max_message_bytes: UTF-8 bytes per message; longer text is cut.
        max_total_bytes: UTF-8 bytes over all kept messages.
    """

    max_messages: int = 40
    max_message_bytes: int = 1024
    max_total_bytes: int = 40 * 1024


@attrs.frozen(kw_only=True)
class NovaSettings:
    """Validated configuration of one :class:`~bidi_nova_sonic.NovaSonicModel`."""

    model_id: str
    input_rate: int
    output_rate: int
    voice: str
    replay_ms: int
    inference: dict[str, Any]
    session_extra: dict[str, Any]
    prompt_extra: dict[str, Any]
    turn_detection: dict[str, Any] | None
    history: HistoryLimits
    connection_limit_s: float | None
    max_error_recoveries: int
    endpoint_uri: str | None
    ca_bundle: str | None
    region: str | None
    boto_session: Any = attrs.field(eq=False, repr=False)

    @property
    def nova_2(self) -> bool:
        """Whether the model is Nova 2 Sonic."""
        return is_nova_2(self.model_id)


def _int_choice(value: Any, choices: tuple[int, ...], where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
        allowed = ", ".join(map(str, choices))
        msg = f"{where} must be one of {allowed} (got {value!r})."
        raise ConfigError(msg)
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{where} must be a positive int (got {value!r})."
        raise ConfigError(msg)
    return value


def _turn_detection(value: Any, model_id: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not is_nova_2(model_id):
        msg = (
            f"provider_config['turn_detection'] needs Amazon Nova 2 Sonic "
            f"(e.g. model_id={NOVA_2_MODEL_ID!r}); {model_id!r} has no turn detection setting."
        )
        raise ConfigError(msg)
    if isinstance(value, str):
        value = {"endpointingSensitivity": value}
    if not isinstance(value, dict):
        msg = (
            "provider_config['turn_detection'] must be 'HIGH', 'MEDIUM', 'LOW' or a "
            f"turnDetectionConfiguration dict (got {type(value).__name__})."
        )
        raise ConfigError(msg)
    sensitivity = value.get("endpointingSensitivity")
    if sensitivity is not None and sensitivity not in ENDPOINTING_SENSITIVITIES:
        msg = (
            "turn_detection endpointingSensitivity must be one of "
            f"{', '.join(ENDPOINTING_SENSITIVITIES)} (got {sensitivity!r})."
        )
        raise ConfigError(msg)
    return dict(value)


def parse_settings(
    model_id: str, provider_config: dict[str, Any], client_config: dict[str, Any]
) -> NovaSettings:
    """Validate both config dicts (already private copies) and return the settings.

    Raises:
        ConfigError: An unknown key (naming the accepted keys and the closest) or a bad value.
    """
    if not isinstance(model_id, str) or not model_id:
        msg = f"model_id must be a non-empty string such as {DEFAULT_MODEL_ID!r}."
        raise ConfigError(msg)
    check_keys(provider_config, _PROVIDER_KEYS, where="nova_sonic provider_config")
    check_keys(client_config, CLIENT_KEYS, where="nova_sonic client_config")
    audio = provider_config.get("audio") or {}
    check_keys(audio, _AUDIO_KEYS, where="nova_sonic provider_config['audio']")
    if audio.get("channels", 1) != 1:
        msg = "Nova Sonic streams mono audio; provider_config['audio']['channels'] must be 1."
        raise ConfigError(msg)
    if audio.get("format", "pcm") != "pcm":
        msg = "Nova Sonic streams 16-bit PCM; provider_config['audio']['format'] must be 'pcm'."
        raise ConfigError(msg)
    input_rate = _int_choice(
        audio.get("input_sample_rate", 16000), INPUT_RATES, "audio input_sample_rate"
    )
    output_rate = _int_choice(
        audio.get("output_sample_rate", 24000), OUTPUT_RATES, "audio output_sample_rate"
    )
    voice = audio.get("voice", DEFAULT_VOICE)
    if not isinstance(voice, str) or not voice:
        msg = f"audio voice must be a voice id such as 'matthew' or 'tiffany' (got {voice!r})."
        raise ConfigError(msg)
    replay_ms = audio.get("replay_ms", DEFAULT_REPLAY_MS)
    if (
        isinstance(replay_ms, bool)
        or not isinstance(replay_ms, int)
        or not 0 <= replay_ms <= MAX_REPLAY_MS
    ):
        msg = (
            f"audio replay_ms must be an int from 0 (no replay) to {MAX_REPLAY_MS} "
            f"milliseconds (got {replay_ms!r})."
        )
        raise ConfigError(msg)
    for key in ("inference", "session", "prompt"):
        if not isinstance(provider_config.get(key, {}), dict):
            msg = f"provider_config[{key!r}] must be a dict."
            raise ConfigError(msg)
        # Sent as JSON: a NaN (e.g. temperature) would be a frame the service refuses.
        check_json(provider_config.get(key, {}), where=f"nova_sonic provider_config[{key!r}]")
    history = provider_config.get("history") or {}
    check_keys(history, _HISTORY_KEYS, where="nova_sonic provider_config['history']")
    limits = HistoryLimits(
        **{k: _positive_int(v, f"history {k}") for k, v in history.items()},
    )
    limit = provider_config.get("connection_limit_s", DEFAULT_CONNECTION_LIMIT_S)
    if limit is not None:
        limit = check_number(
            limit, where="connection_limit_s", above=0, optional=True, unit="seconds"
        )
        if limit > PROVIDER_LIMIT_S:
            msg = (
                f"connection_limit_s must be at most {PROVIDER_LIMIT_S:g} s, Bedrock's stream "
                f"limit (got {limit!r}); use None to rely on the provider's timeout."
            )
            raise ConfigError(msg)
    recoveries = provider_config.get("max_error_recoveries", 2)
    if isinstance(recoveries, bool) or not isinstance(recoveries, int) or recoveries < 0:
        msg = f"max_error_recoveries must be an int >= 0 (got {recoveries!r})."
        raise ConfigError(msg)

    session = client_config.get("boto_session")
    region = client_config.get("region")
    if session is not None and region is not None:
        msg = (
            "client_config takes 'boto_session' or 'region', not both: the region comes "
            "from the session (boto3.Session(region_name=...))."
        )
        raise ConfigError(msg)
    if region is not None and (not isinstance(region, str) or not region):
        msg = f"client_config['region'] must be a region name such as 'us-east-1' (got {region!r})."
        raise ConfigError(msg)
    endpoint = client_config.get("endpoint_uri")
    if endpoint is not None:
        if not isinstance(endpoint, str) or not endpoint.startswith("https://"):
            msg = (
                f"client_config['endpoint_uri'] must be an https:// URL (got {endpoint!r}): "
                "the Bedrock bidirectional stream needs HTTP/2 over TLS, and the awscrt "
                "transport cannot speak cleartext HTTP/2."
            )
            raise ConfigError(msg)
        endpoint = endpoint.rstrip("/")
    ca_bundle = client_config.get("ca_bundle")
    if ca_bundle is not None:
        ca_bundle = str(ca_bundle)
    return NovaSettings(
        model_id=model_id,
        input_rate=input_rate,
        output_rate=output_rate,
        voice=voice,
        replay_ms=replay_ms,
        inference={**DEFAULT_INFERENCE, **copy_config(provider_config.get("inference", {}))},
        session_extra=copy_config(provider_config.get("session", {})),
        prompt_extra=copy_config(provider_config.get("prompt", {})),
        turn_detection=_turn_detection(provider_config.get("turn_detection"), model_id),
        history=limits,
        connection_limit_s=None if limit is None else float(limit),
        max_error_recoveries=recoveries,
        endpoint_uri=endpoint,
        ca_bundle=ca_bundle,
        region=region,
        boto_session=session,
    )


@attrs.frozen(kw_only=True)
class Target:
    """Where a Nova connection goes: region, endpoint and trust, and where each came from."""

    region: str
    region_source: str
    endpoint: str
    endpoint_source: str
    ca_bundle: str | None
    ca_source: str


def resolve_target(
    settings: NovaSettings,
    session_region: str | None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """Resolve region, endpoint and CA bundle from the config, then the environment.

    Region: ``client_config['region']``, the region of a ``boto_session`` passed in,
    ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then the profile's (*session_region*).
    Endpoint: ``client_config['endpoint_uri']``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``,
    ``AWS_ENDPOINT_URL`` (unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``), else
    ``https://bedrock-runtime.<region>.amazonaws.com``. CA bundle:
    ``client_config['ca_bundle']``, then ``AWS_CA_BUNDLE``, else the system trust store.

    Raises:
        MissingCredentialsError: No region anywhere.
        ConfigError: An endpoint variable that is not an ``https://`` URL.
    """
    env = os.environ if environ is None else environ
    if settings.region:
        region, region_source = settings.region, "client_config['region']"
    elif settings.boto_session is not None and session_region:
        region, region_source = session_region, "the boto_session's region"
    elif name := next((n for n in REGION_ENVS if env.get(n)), None):
        region, region_source = env[name], name
    elif session_region:
        region, region_source = session_region, "the AWS profile's region"
    else:
        msg = (
            "No AWS region for Nova Sonic: set AWS_REGION (or AWS_DEFAULT_REGION, or region "
            "in your AWS profile), or pass client_config={'region': 'us-east-1'} or a "
            "boto3.Session(region_name=...)."
        )
        raise MissingCredentialsError(
            msg, env_vars=REGION_ENVS, config_keys=("client_config.region",)
        )
    ignore = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true"
    endpoint_env = None if ignore else next((n for n in ENDPOINT_ENVS if env.get(n)), None)
    if settings.endpoint_uri:
        endpoint, endpoint_source = settings.endpoint_uri, "client_config['endpoint_uri']"
    elif endpoint_env is not None:
        endpoint, endpoint_source = env[endpoint_env].rstrip("/"), endpoint_env
        if not endpoint.startswith("https://"):
            msg = (
                f"{endpoint_env} must be an https:// URL for Nova Sonic (got {endpoint!r}): "
                "the Bedrock bidirectional stream needs HTTP/2 over TLS."
            )
            raise ConfigError(msg)
    else:
        endpoint = f"https://bedrock-runtime.{region}.amazonaws.com"
        endpoint_source = f"the regional endpoint of {region}"
    if settings.ca_bundle:
        ca_bundle, ca_source = settings.ca_bundle, "client_config['ca_bundle']"
    elif env.get(CA_BUNDLE_ENV):
        ca_bundle, ca_source = env[CA_BUNDLE_ENV], CA_BUNDLE_ENV
    else:
        ca_bundle, ca_source = None, "the system trust store"
    return Target(
        region=region,
        region_source=region_source,
        endpoint=endpoint,
        endpoint_source=endpoint_source,
        ca_bundle=ca_bundle,
        ca_source=ca_source,
    )
