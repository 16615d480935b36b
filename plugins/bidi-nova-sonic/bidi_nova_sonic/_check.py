"""What ``bidi check nova_sonic`` needs to know: the endpoint, region and credential source.

Asking boto3's credential chain may probe the instance metadata service (on a
machine outside AWS that costs about a second); ``bidi check`` runs this in a thread
under its time bound. Only the credential *source* is reported, never a value.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from bidi_core import BidiModel
from bidi_core.diagnostics import CheckInfo, Credentials, Endpoint

from ._settings import resolve_target

__all__ = ["check_info"]

_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE "
    "(aws sso login for SSO), or configure ~/.aws/credentials"
)
#: botocore's name for each credential provider -> what a user calls it.
_METHODS = {
    "env": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "explicit": "the boto_session's keys",
    "shared-credentials-file": "~/.aws/credentials",
    "config-file": "~/.aws/config",
    "sso": "AWS SSO (aws sso login)",
    "assume-role": "an assumed role (profile role_arn)",
    "custom-process": "a credential_process",
    "iam-role": "the instance's IAM role (metadata service)",
    "container-role": "the container's role",
    "assume-role-with-web-identity": "a web identity token",
}


def check_info(model: BidiModel) -> CheckInfo:
    """Describe *model*'s endpoint, region and credentials for ``bidi check``."""
    from ._model import NovaSonicModel  # noqa: PLC0415 - the SDK loads on use

    assert isinstance(model, NovaSonicModel)
    session = model._boto_session()
    target = resolve_target(model.settings, getattr(session, "region_name", None))
    parts = urlsplit(target.endpoint)
    context = None
    if target.ca_bundle is not None:
        # awscrt trusts only this bundle then (it replaces the system store), as here.
        context = ssl.create_default_context(cafile=target.ca_bundle)
    endpoint = Endpoint(
        host=parts.hostname or "",
        port=parts.port or 443,
        alpn=("h2",),
        ssl_context=context,
        source=target.endpoint_source,
        trust_fix="set AWS_CA_BUNDLE (or client_config['ca_bundle']) to a PEM file holding your CA",
    )
    found = session.get_credentials()
    if found is None:
        credentials = Credentials(found=False, fix=_FIX)
    else:
        method = str(getattr(found, "method", "") or "")
        profile = getattr(session, "profile_name", None)
        where = _METHODS.get(method, method or "boto3's credential chain")
        if profile and profile != "default" and method in ("shared-credentials-file", "sso"):
            where += f" (profile {profile!r})"
        credentials = Credentials(found=True, source=where, fix=_FIX)
    details = (f"region {target.region} (from {target.region_source})",)
    return CheckInfo(endpoint=endpoint, credentials=credentials, details=details)
