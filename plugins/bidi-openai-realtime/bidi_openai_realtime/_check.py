"""What ``bidi check openai_realtime`` needs to know: the endpoint and the API key's source."""

from __future__ import annotations

import os
import ssl
from urllib.parse import urlsplit

from bidi_core import BidiModel
from bidi_core.diagnostics import CheckInfo, Credentials, Endpoint

from ._settings import API_KEY_ENV

__all__ = ["check_info"]

_FIX = f"set {API_KEY_ENV}, or pass --set client_config.api_key=..."


def check_info(model: BidiModel) -> CheckInfo:
    """Describe *model*'s endpoint and API key source for ``bidi check`` (no I/O)."""
    from ._model import OpenAIRealtimeModel  # noqa: PLC0415 - websockets loads on use

    assert isinstance(model, OpenAIRealtimeModel)
    settings = model._settings
    parts = urlsplit(settings.url)
    secure = parts.scheme == "wss"
    given = model.config["client_config"].get("base_url")
    context = settings.ssl if isinstance(settings.ssl, ssl.SSLContext) else None
    endpoint = Endpoint(
        host=parts.hostname or "",
        port=parts.port or (443 if secure else 80),
        tls=secure,
        ssl_context=context,
        source="client_config['base_url']" if given else "the default URL",
        trust_fix="set SSL_CERT_FILE to a PEM file holding your CA, or pass client_config['ssl']",
    )
    if settings.api_key:
        credentials = Credentials(found=True, source="client_config['api_key']", fix=_FIX)
    elif os.environ.get(API_KEY_ENV):
        credentials = Credentials(found=True, source=API_KEY_ENV, fix=_FIX)
    else:
        credentials = Credentials(found=False, fix=_FIX)
    return CheckInfo(endpoint=endpoint, credentials=credentials, details=(settings.url,))
