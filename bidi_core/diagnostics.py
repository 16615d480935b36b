"""What a plugin tells ``bidi check``: where its model connects and which credentials it found.

``bidi check MODEL`` is a first-contact doctor. The core runs the steps and prints
them (config, credentials, DNS, TLS, a session); the provider-specific facts come
from the plugin, through a function it names when it registers::

    register("my_model", _create, check="bidi_my_model._check:check_info", ...)

``check_info(model)`` receives the model ``get_model()`` built from the user's
settings and returns a :class:`CheckInfo` (it may be a coroutine function). It must
not open the connection itself (the core does that with ``model.start()``), never
put a secret in any field, and raise :class:`~bidi_core.ConfigError` (or
:class:`~bidi_core.MissingCredentialsError`) for a configuration it cannot use::

    def check_info(model):
        key_env = "MY_API_KEY"
        found = bool(model.config["client_config"].get("api_key") or os.environ.get(key_env))
        return CheckInfo(
            endpoint=Endpoint(host="api.example.com", port=443, source="the default URL"),
            credentials=Credentials(
                found=found,
                source="client_config['api_key']" if ... else key_env,
                fix=f"set {key_env}, or pass --set client_config.api_key=...",
            ),
        )

A plugin without ``check=`` still gets the config and session steps.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import attrs

if TYPE_CHECKING:
    from ._protocol import BidiModel

__all__ = ["CheckHook", "CheckInfo", "Credentials", "Endpoint"]


@attrs.frozen(kw_only=True)
class Endpoint:
    """The network endpoint a model connects to.

    Attributes:
        host: The host name (or address) the client connects to.
        port: The TCP port.
        tls: Whether the connection is TLS (``wss://``, ``https://``).
        ssl_context: The trust the client uses, when it is not the default context
            (``ssl.create_default_context()``, which reads ``SSL_CERT_FILE``).
        alpn: ALPN protocols the client offers (``("h2",)`` for HTTP/2).
        source: Where the endpoint comes from, e.g. ``"the default URL"`` or
            ``"AWS_ENDPOINT_URL_BEDROCK_RUNTIME"`` (shown when it cannot be reached).
        trust_fix: What to set so that a private CA (or a TLS-inspecting proxy) is
            trusted, e.g. ``"set SSL_CERT_FILE to a PEM file holding your CA"``.
    """

    host: str
    port: int
    tls: bool = True
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, repr=False, eq=False)
    alpn: tuple[str, ...] = ()
    source: str = ""
    trust_fix: str = "set SSL_CERT_FILE to a PEM file holding your CA"


@attrs.frozen(kw_only=True)
class Credentials:
    """Which credentials a model would use (never their values).

    Attributes:
        found: Whether credentials were found.
        source: Where they come from, e.g. ``"OPENAI_API_KEY"`` or ``"AWS profile
            'dev' (shared-credentials-file)"``; empty when none were found.
        fix: What to set, said to a user of the ``bidi`` command, e.g. ``"set
            OPENAI_API_KEY, or pass --set client_config.api_key=..."``; also shown
            when the service rejects the credentials.
    """

    found: bool
    source: str = ""
    fix: str = ""


@attrs.frozen(kw_only=True)
class CheckInfo:
    """What a plugin's ``check_info(model)`` returns.

    Attributes:
        endpoint: Where the model connects; None for a model without a network
            connection (the DNS and TLS steps are skipped).
        credentials: The credentials the model would use.
        details: Extra facts shown on the config line, e.g. ``"region us-east-1"``.
    """

    endpoint: Endpoint | None
    credentials: Credentials
    details: tuple[str, ...] = ()


#: The signature of the function a plugin passes as ``register(..., check="module:attr")``.
CheckHook: TypeAlias = Callable[["BidiModel"], "CheckInfo | Awaitable[CheckInfo]"]
