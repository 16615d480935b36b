"""What ``bidi_core.list_models()`` needs of Nova Sonic: ids, capabilities, env var names.

Kept apart from ``_settings`` (configuration parsing, several attrs classes) so that
listing models imports only this; ``_settings`` and ``_hooks`` both build on it.
"""

from __future__ import annotations

from typing import Final

from bidi_core import ModelCapabilities

__all__ = [
    "CAPABILITIES",
    "CA_BUNDLE_ENV",
    "CREDENTIAL_ENVS",
    "DEFAULT_MODEL_ID",
    "ENDPOINT_ENVS",
    "NOVA_2_MODEL_ID",
    "PROVIDER_LIMIT_S",
    "REGION_ENVS",
    "capabilities_for",
    "is_nova_2",
]

#: The default ``model_id`` (Amazon Nova Sonic v1).
DEFAULT_MODEL_ID: Final = "amazon.nova-sonic-v1:0"
#: Amazon Nova 2 Sonic (turn detection sensitivity, cross-modal text input).
NOVA_2_MODEL_ID: Final = "amazon.nova-2-sonic-v1:0"
#: A Bedrock bidirectional stream stays open for at most 8 minutes.
PROVIDER_LIMIT_S: Final = 480.0
#: Read for the region, in this order (as the AWS CLI and the smithy SDKs do; boto3
#: itself reads only AWS_DEFAULT_REGION and the profile, which come last).
REGION_ENVS: Final = ("AWS_REGION", "AWS_DEFAULT_REGION")
#: Read for the endpoint, in this order, as boto3 and the AWS CLI do.
ENDPOINT_ENVS: Final = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
#: Read for a PEM bundle of trusted CAs (awscrt itself reads no variable).
CA_BUNDLE_ENV: Final = "AWS_CA_BUNDLE"
#: The credential variables of boto3's chain (the rest: ~/.aws files, SSO, roles, IMDS).
CREDENTIAL_ENVS: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


def is_nova_2(model_id: str) -> bool:
    """Whether *model_id* names an Amazon Nova 2 Sonic model (id, ARN or profile)."""
    return "nova-2-sonic" in model_id


def capabilities_for(*, input_rate: int = 16000, output_rate: int = 24000) -> ModelCapabilities:
    """Return the capabilities of a Nova Sonic model with these audio settings.

    ``connection_limit_s`` is Bedrock's 8-minute stream limit; the model restarts
    proactively a little earlier (``provider_config['connection_limit_s']``).
    """
    return ModelCapabilities(
        input_modalities=("text", "audio"),
        output_modalities=("text", "audio"),
        tools=True,
        interruption=True,
        output_truncation=False,
        resumption=False,
        connection_limit_s=PROVIDER_LIMIT_S,
        input_sample_rates=(input_rate,),
        output_sample_rate=output_rate,
        resamples_input=True,
        image_mime_types=(),
    )


#: Capabilities with the default configuration (what ``bidi models`` shows).
CAPABILITIES: Final = capabilities_for()
