"""Registers ``nova_sonic`` with bidi (imports neither boto3 nor the Bedrock SDK)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import bidi_core
from bidi_core import BidiModel, RegisterModel

from ._capabilities import (
    CA_BUNDLE_ENV,
    CAPABILITIES,
    CREDENTIAL_ENVS,
    ENDPOINT_ENVS,
    REGION_ENVS,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["bidi_register_models", "credentials_configured"]

_ENV_HINTS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_PROFILE_KEYS = (
    "aws_access_key_id",
    "credential_process",
    "role_arn",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
    "credential_source",
)


def _profile_file_has_credentials(path: Path) -> bool:
    import configparser  # noqa: PLC0415 - only when credentials are checked, not to list

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return False
    return any(key in parser[section] for section in parser.sections() for key in _PROFILE_KEYS)


def credentials_configured() -> bool:
    """Whether AWS credentials look configured, from env vars and local files only.

    Never asks boto3's credential chain (which may call the instance metadata
    service over the network).
    """
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if any(env.get(name) for name in _ENV_HINTS):
        return True
    from pathlib import Path  # noqa: PLC0415 - only when credentials are checked

    home = Path.home()
    files = (
        Path(env.get("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials")),
        Path(env.get("AWS_CONFIG_FILE", home / ".aws" / "config")),
    )
    return any(_profile_file_has_credentials(path) for path in files)


def _create(**config: Any) -> BidiModel:
    from ._model import NovaSonicModel  # noqa: PLC0415 - the SDK is imported on use

    return NovaSonicModel(**config)


@bidi_core.hookimpl
def bidi_register_models(register: RegisterModel) -> None:
    """Register ``nova_sonic``."""
    register(
        "nova_sonic",
        _create,
        capabilities=CAPABILITIES,
        summary="Amazon Nova Sonic / Nova 2 Sonic speech-to-speech on Bedrock (HTTP/2 stream).",
        credentials=credentials_configured,
        env_vars=(*CREDENTIAL_ENVS, *REGION_ENVS, *ENDPOINT_ENVS, CA_BUNDLE_ENV),
        check="bidi_nova_sonic._check:check_info",
        fake="bidi_nova_sonic.testing:serve",
    )
