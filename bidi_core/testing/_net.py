"""Helpers for fake servers on 127.0.0.1: free ports and a throwaway TLS CA."""

from __future__ import annotations

import socket
import ssl
import tempfile
from pathlib import Path

import attrs

__all__ = ["LoopbackTLS", "free_port", "loopback_tls"]


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


def loopback_tls(alpn: list[str] | None = None) -> LoopbackTLS:
    """Create a throwaway CA and a server certificate for 127.0.0.1 (needs ``trustme``).

    Args:
        alpn: ALPN protocols the server offers, e.g. ``["h2"]``.

    Raises:
        ModuleNotFoundError: ``trustme`` is missing; install ``bidi-core[testing]``.
    """
    try:
        import trustme  # noqa: PLC0415 - optional extra
    except ModuleNotFoundError as exc:
        msg = "loopback_tls() needs trustme; install it with: pip install 'bidi-core[testing]'"
        raise ModuleNotFoundError(msg) from exc
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
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
