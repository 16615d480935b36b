"""What ``bidi check example`` needs to know: where the model connects, which key it has.

``bidi check`` runs the steps itself (DNS, TLS, a session with ``start()``/``stop()``);
a plugin only describes its endpoint and credentials. Never put a secret in a field.
"""

from __future__ import annotations

import os
import ssl

from bidi_core import BidiModel
from bidi_core.diagnostics import CheckInfo, Credentials, Endpoint

from ._hooks import API_KEY_ENV

__all__ = ["check_info"]

_FIX = f"set {API_KEY_ENV}, or pass --set client_config.api_key=..."


def check_info(model: BidiModel) -> CheckInfo:
    """Describe *model*'s endpoint and API key source for ``bidi check`` (no I/O)."""
    from ._model import ExampleModel  # noqa: PLC0415 - the model (and its SDK) load on use

    assert isinstance(model, ExampleModel)
    client_config = model.config["client_config"]
    tls = client_config.get("ssl", True)
    endpoint = Endpoint(
        host=model.host,
        port=model.port,
        tls=tls is not False,
        ssl_context=tls if isinstance(tls, ssl.SSLContext) else None,
        source="client_config['host']" if "host" in client_config else "the default host",
    )
    if client_config.get("api_key"):
        credentials = Credentials(found=True, source="client_config['api_key']", fix=_FIX)
    elif os.environ.get(API_KEY_ENV):
        credentials = Credentials(found=True, source=API_KEY_ENV, fix=_FIX)
    else:
        credentials = Credentials(found=False, fix=_FIX)
    return CheckInfo(endpoint=endpoint, credentials=credentials)
