"""Configuration of the OpenAI Realtime model: keys, defaults, URL and session building.

Everything here is pure (no I/O); the API key is resolved at ``start()``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from bidi_core._config import check_json, check_keys, check_number, copy_config, deep_merge
from bidi_core._errors import ConfigError

from ._wire import SAMPLE_RATE

__all__ = [
    "API_KEY_ENV",
    "AUDIO_KEYS",
    "CLIENT_KEYS",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECTION_LIMIT_S",
    "DEFAULT_MODEL_ID",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DEFAULT_VOICE",
    "PROVIDER_KEYS",
    "Secret",
    "Settings",
    "build_url",
    "default_session",
    "is_loopback",
    "parse_settings",
    "safe_client_config",
]

#: The default ``model_id``.
DEFAULT_MODEL_ID = "gpt-realtime"
#: Where the socket is opened unless ``client_config["base_url"]`` says otherwise.
DEFAULT_BASE_URL = "wss://api.openai.com/v1"
#: The environment variable read when ``client_config`` has no ``api_key``.
API_KEY_ENV = "OPENAI_API_KEY"
#: Proactive restart a little before the service's 60-minute session limit.
DEFAULT_CONNECTION_LIMIT_S = 55 * 60.0
#: The default output voice.
DEFAULT_VOICE = "marin"
#: The default input transcription model (user transcripts).
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
#: Default seconds for the WebSocket opening handshake and the session handshake.
DEFAULT_OPEN_TIMEOUT = 15.0
#: Default largest accepted WebSocket message (audio deltas can exceed 1 MiB).
DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20

CLIENT_KEYS = (
    "allow_insecure",
    "api_key",
    "auth_header",
    "base_url",
    "headers",
    "max_message_size",
    "open_timeout",
    "organization",
    "project",
    "proxy",
    "query",
    "ssl",
)
PROVIDER_KEYS = ("audio", "connection_limit_s", "inference")
AUDIO_KEYS = ("channels", "format", "input_sample_rate", "output_sample_rate", "speed", "voice")

# Friendly flat names in ``inference`` and where they live in the GA session.
_SHORTCUTS: Mapping[str, tuple[str, str]] = {
    "turn_detection": ("audio", "input"),
    "transcription": ("audio", "input"),
    "noise_reduction": ("audio", "input"),
    "voice": ("audio", "output"),
    "speed": ("audio", "output"),
}
# Beta session fields and their GA replacements.
_BETA_FIELDS: Mapping[str, str] = {
    "modalities": "output_modalities",
    "input_audio_format": "audio.input.format",
    "output_audio_format": "audio.output.format",
    "input_audio_transcription": "transcription (audio.input.transcription)",
    "input_audio_noise_reduction": "noise_reduction (audio.input.noise_reduction)",
    "max_response_output_tokens": "max_output_tokens",
}
_SENSITIVE_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})


class Secret:
    """A string that never shows itself in ``repr``/``str`` (API keys, auth headers).

    Args:
        value: The secret.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself (only to put it on the wire)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        msg = "A Secret cannot be pickled."
        raise TypeError(msg)


def _secret(value: Any, *, where: str) -> Secret | None:
    if value is None:
        return None
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        msg = f"{where} must be a str (got {type(value).__name__})."
        raise ConfigError(msg)
    return Secret(value)


def default_session() -> dict[str, Any]:
    """Return a fresh copy of the GA session defaults (callers may mutate it)."""
    return {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "transcription": {"model": DEFAULT_TRANSCRIPTION_MODEL},
                "turn_detection": {
                    "type": "server_vad",
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "voice": DEFAULT_VOICE,
            },
        },
        "tool_choice": "auto",
    }


def is_loopback(host: str) -> bool:
    """Return whether *host* is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_url(
    base_url: Any,
    model_id: str,
    query: Mapping[str, Any] | None = None,
    *,
    allow_insecure: bool = False,
) -> str:
    """Return the socket URL ``{base_url}/realtime?model=...``.

    ``http(s)`` maps to ``ws(s)``; a query string in *base_url* is kept; *query*
    adds parameters (a ``None`` value removes one, e.g. ``{"model": None}`` for
    Azure deployments). Plain ``ws://`` to a non-loopback host is refused unless
    *allow_insecure*.

    Raises:
        ConfigError: The URL is unusable or insecure.
    """
    if not isinstance(base_url, str):
        msg = f"client_config['base_url'] must be a str (got {type(base_url).__name__})."
        raise ConfigError(msg)
    parts = urlsplit(base_url)
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    scheme = schemes.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        msg = (
            f"client_config['base_url'] must be an http(s):// or ws(s):// URL with a host, "
            f"got {base_url!r} (e.g. 'wss://api.openai.com/v1')."
        )
        raise ConfigError(msg)
    if scheme == "ws" and not allow_insecure and not is_loopback(parts.hostname):
        msg = (
            f"Refusing plain-text {parts.scheme}:// to the non-loopback host "
            f"{parts.hostname!r}: the API key would travel unencrypted. Use https:// or "
            "wss://, or pass client_config={'allow_insecure': True} if you really mean it."
        )
        raise ConfigError(msg)
    params: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.setdefault("model", model_id)
    for key, value in (query or {}).items():
        if value is None:
            params.pop(str(key), None)
        else:
            params[str(key)] = str(value)
    path = parts.path.rstrip("/") + "/realtime"
    return urlunsplit((scheme, parts.netloc, path, urlencode(params), ""))


def _place_inference(inference: Mapping[str, Any]) -> dict[str, Any]:
    """Return *inference* as a GA session fragment (shortcut keys moved into ``audio``)."""
    fragment: dict[str, Any] = {}
    for key, value in inference.items():
        if key in _BETA_FIELDS:
            msg = (
                f"provider_config['inference'][{key!r}] is a beta Realtime field; "
                f"the GA protocol calls it {_BETA_FIELDS[key]}."
            )
            raise ConfigError(msg)
        if key == "type" and value != "realtime":
            msg = "provider_config['inference']['type'] must be 'realtime' (a realtime session)."
            raise ConfigError(msg)
        if key in _SHORTCUTS:
            outer, inner = _SHORTCUTS[key]
            fragment = deep_merge(fragment, {outer: {inner: {key: value}}})
        else:
            fragment = deep_merge(fragment, {key: value})
    return fragment


def _check_audio(audio: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``provider_config['audio']`` and return its session fragment."""
    check_keys(audio, AUDIO_KEYS, where="openai_realtime provider_config['audio']")
    for key in ("input_sample_rate", "output_sample_rate"):
        if key in audio and audio[key] != SAMPLE_RATE:
            msg = (
                f"provider_config['audio'][{key!r}] must be {SAMPLE_RATE} (got {audio[key]!r}): "
                "GA Realtime PCM is 24 kHz only. Input at other rates is resampled for you."
            )
            raise ConfigError(msg)
    if audio.get("channels", 1) != 1:
        msg = f"provider_config['audio']['channels'] must be 1 (got {audio['channels']!r})."
        raise ConfigError(msg)
    if audio.get("format", "pcm") != "pcm":
        msg = f"provider_config['audio']['format'] must be 'pcm' (got {audio['format']!r})."
        raise ConfigError(msg)
    output: dict[str, Any] = {}
    if "voice" in audio:
        if not isinstance(audio["voice"], str):
            msg = f"provider_config['audio']['voice'] must be a str (got {audio['voice']!r})."
            raise ConfigError(msg)
        output["voice"] = audio["voice"]
    if "speed" in audio:
        output["speed"] = check_number(
            audio["speed"], where="provider_config['audio']['speed']", minimum=0.25, maximum=1.5
        )
    return {"audio": {"output": output}} if output else {}


def _check_formats(session: Mapping[str, Any]) -> None:
    audio = session.get("audio") or {}
    for side in ("input", "output"):
        fmt = ((audio.get(side) or {}).get("format")) or {}
        if fmt.get("type", "audio/pcm") != "audio/pcm" or fmt.get("rate", SAMPLE_RATE) != (
            SAMPLE_RATE
        ):
            msg = (
                f"session audio.{side}.format must be {{'type': 'audio/pcm', 'rate': 24000}} "
                f"(got {fmt!r}): bidi audio events are PCM16 at 24 kHz."
            )
            raise ConfigError(msg)
    modalities = session.get("output_modalities")
    if modalities is not None and (
        not isinstance(modalities, list) or not set(modalities) <= {"audio", "text"}
    ):
        msg = f"session output_modalities must be ['audio'] or ['text'] (got {modalities!r})."
        raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class Settings:
    """The parsed configuration of one model instance (no secrets in ``repr``)."""

    url: str
    api_key: Secret | None = attrs.field(repr=False)
    auth_header: Literal["authorization", "api-key"]
    organization: str | None
    project: str | None
    headers: dict[str, str | Secret] = attrs.field(repr=False)
    ssl: Any = attrs.field(repr=False)
    proxy: str | Literal[True] | None
    open_timeout: float
    max_message_size: int | None
    connection_limit_s: float | None
    session: dict[str, Any]

    def http_headers(self, api_key: str) -> dict[str, str]:
        """Return the handshake headers for *api_key* (never logged)."""
        headers: dict[str, str] = {}
        if self.auth_header == "api-key":
            headers["api-key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {api_key}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        for key, value in self.headers.items():
            headers[key] = value.reveal() if isinstance(value, Secret) else value
        return headers


def parse_settings(
    model_id: str, provider_config: Mapping[str, Any], client_config: Mapping[str, Any]
) -> Settings:
    """Validate both configs and return the :class:`Settings` (pure; no env, no I/O).

    Raises:
        ConfigError: An unknown key or a bad value.
    """
    check_keys(provider_config, PROVIDER_KEYS, where="openai_realtime provider_config")
    check_keys(client_config, CLIENT_KEYS, where="openai_realtime client_config")
    audio = provider_config.get("audio") or {}
    inference = provider_config.get("inference") or {}
    for name, value in (("audio", audio), ("inference", inference)):
        if not isinstance(value, Mapping):
            msg = f"provider_config[{name!r}] must be a dict (got {type(value).__name__})."
            raise ConfigError(msg)
    check_json(inference, where="openai_realtime provider_config['inference']")
    session = deep_merge(default_session(), _check_audio(audio))
    session = deep_merge(session, _place_inference(inference))
    _check_formats(session)

    limit = check_number(
        provider_config.get("connection_limit_s", DEFAULT_CONNECTION_LIMIT_S),
        where="provider_config['connection_limit_s']",
        above=0,
        optional=True,
        unit="seconds",
    )

    auth_header = client_config.get("auth_header", "authorization")
    if auth_header not in ("authorization", "api-key"):
        msg = (
            "client_config['auth_header'] must be 'authorization' (Bearer, OpenAI) or "
            f"'api-key' (Azure), got {auth_header!r}."
        )
        raise ConfigError(msg)
    headers_in = client_config.get("headers") or {}
    if not isinstance(headers_in, Mapping):
        msg = f"client_config['headers'] must be a dict (got {type(headers_in).__name__})."
        raise ConfigError(msg)
    headers: dict[str, str | Secret] = {}
    for key, value in headers_in.items():
        if str(key).lower() == "openai-beta":
            msg = (
                "client_config['headers'] must not set 'OpenAI-Beta': this plugin speaks the "
                "GA Realtime protocol, which sends no beta header."
            )
            raise ConfigError(msg)
        if isinstance(value, Secret):
            headers[str(key)] = value
        elif str(key).lower() in _SENSITIVE_HEADERS:
            headers[str(key)] = Secret(str(value))
        else:
            headers[str(key)] = str(value)
    query = client_config.get("query") or {}
    if not isinstance(query, Mapping):
        msg = f"client_config['query'] must be a dict (got {type(query).__name__})."
        raise ConfigError(msg)
    allow_insecure = client_config.get("allow_insecure", False)
    if not isinstance(allow_insecure, bool):
        msg = f"client_config['allow_insecure'] must be a bool (got {allow_insecure!r})."
        raise ConfigError(msg)
    url = build_url(
        client_config.get("base_url") or DEFAULT_BASE_URL,
        model_id,
        query,
        allow_insecure=allow_insecure,
    )
    if url.startswith("ws://") and client_config.get("ssl") is not None:
        msg = "client_config['ssl'] needs an https:// or wss:// base_url."
        raise ConfigError(msg)
    open_timeout = check_number(
        client_config.get("open_timeout", DEFAULT_OPEN_TIMEOUT),
        where="client_config['open_timeout']",
        above=0,
        unit="seconds",
    )
    max_size = client_config.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2**20
    ):
        msg = (
            "client_config['max_message_size'] must be None (no limit) or at least 1 MiB "
            f"(got {max_size!r}): audio deltas are large."
        )
        raise ConfigError(msg)
    proxy = client_config.get("proxy", True)
    if proxy is not None and not isinstance(proxy, str | bool):
        msg = f"client_config['proxy'] must be a URL, True (from env) or None (got {proxy!r})."
        raise ConfigError(msg)
    return Settings(
        url=url,
        api_key=_secret(client_config.get("api_key"), where="client_config['api_key']"),
        auth_header=auth_header,
        organization=client_config.get("organization"),
        project=client_config.get("project"),
        headers=headers,
        ssl=client_config.get("ssl"),
        proxy=None if proxy is False else proxy,
        open_timeout=open_timeout,
        max_message_size=max_size,
        connection_limit_s=limit,
        session=session,
    )


def safe_client_config(client_config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of *client_config* whose secrets are :class:`Secret` objects."""
    check_keys(client_config, CLIENT_KEYS, where="openai_realtime client_config")
    out: dict[str, Any] = copy_config(dict(client_config))
    if out.get("api_key") is not None and not isinstance(out["api_key"], Secret):
        out["api_key"] = Secret(str(out["api_key"]))
    headers = out.get("headers")
    if isinstance(headers, dict):
        out["headers"] = {
            k: Secret(str(v))
            if str(k).lower() in _SENSITIVE_HEADERS and not isinstance(v, Secret)
            else v
            for k, v in headers.items()
        }
    return out
