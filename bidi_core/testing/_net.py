"""Helpers for fake servers on 127.0.0.1: free ports, a throwaway TLS CA, a test resolver."""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["LoopbackTLS", "free_port", "loopback_tls", "resolve_to_loopback"]

#: Names and addresses that are this machine (always resolved, never refused).
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "ip6-localhost"})


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.frozen(kw_only=True)
class LoopbackTLS:
    """A throwaway CA and a server certificate for ``127.0.0.1`` / ``localhost``.

    Attributes:
        server_context: For the fake server (``ssl=`` of ``asyncio.start_server``).
        client_context: An ``SSLContext`` trusting only the throwaway CA.
        ca_pem: The CA certificate in PEM (for clients that take bytes).
        ca_path: The CA certificate written to a temporary file (for ``ca_bundle``).
    """

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_pem: bytes
    ca_path: Path


def loopback_tls(alpn: list[str] | None = None, hostnames: tuple[str, ...] = ()) -> LoopbackTLS:
    """Create a throwaway CA and a server certificate for 127.0.0.1 (needs ``trustme``).

    Args:
        alpn: ALPN protocols the server offers, e.g. ``["h2"]``.
        hostnames: More names the certificate is issued for, e.g. the provider's real
            host name (``"api.openai.com"``), so that a client using its default URL
            verifies it when :func:`resolve_to_loopback` maps that name to the fake.

    Raises:
        ModuleNotFoundError: ``trustme`` is missing; install ``bidi-core[testing]``.
    """
    try:
        import trustme  # noqa: PLC0415 - optional extra
    except ModuleNotFoundError as exc:
        msg = "loopback_tls() needs trustme; install it with: pip install 'bidi-core[testing]'"
        raise ModuleNotFoundError(msg) from exc
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", *hostnames)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    if alpn:
        server.set_alpn_protocols(alpn)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    pem = ca.cert_pem.bytes()
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
        prefix="bidi-test-ca-", suffix=".pem", delete=False
    )
    with handle:
        handle.write(pem)
    return LoopbackTLS(
        server_context=server, client_context=client, ca_pem=pem, ca_path=Path(handle.name)
    )


@contextlib.contextmanager
def resolve_to_loopback(hosts: Mapping[str, int]) -> Iterator[None]:
    """Resolve each host name of *hosts* to 127.0.0.1 at its port; refuse every other name.

    Patches :func:`socket.getaddrinfo`, which Python clients (and asyncio's
    ``loop.getaddrinfo``) use, so that a client connecting to a provider's real host
    name with its default URL (``wss://api.openai.com/...``, port 443) reaches the
    fake on ``127.0.0.1:<port>`` while the URL, the ``Host`` header and the TLS server
    name stay the real ones. Any other name or address (other than loopback) fails
    with :class:`socket.gaierror`, so no test can reach a real address this way.
    Clients that resolve names outside Python (awscrt) are not covered: point them at
    127.0.0.1 with an endpoint setting instead. Not thread-safe across tests.

    Args:
        hosts: Host name -> the fake's port on 127.0.0.1.
    """
    real = socket.getaddrinfo
    mapped = {name.lower(): port for name, port in hosts.items()}

    def getaddrinfo(  # noqa: PLR0917 - socket.getaddrinfo's own signature
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        key = str(name).lower().rstrip(".") if name is not None else ""
        if key in mapped:
            return real("127.0.0.1", mapped[key], socket.AF_INET, type, proto, flags)
        if name is None or key in _LOOPBACK or key.startswith("127."):
            return real(host, port, family, type, proto, flags)
        msg = f"{name!r} is not resolvable in this test (only {sorted(mapped)} and loopback)"
        raise socket.gaierror(socket.EAI_NONAME, msg)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real
