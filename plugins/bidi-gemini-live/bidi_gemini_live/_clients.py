"""One ``google.genai.Client`` per distinct client configuration, shared by the sessions.

A ``genai.Client`` holds two httpx clients, its API client and pydantic state (~50 KiB);
a process running many live sessions with the same ``client_config`` needs only one:
each session opens its own WebSocket through it (``client.aio.live.connect``), so a
session's failure stays its own. The client is closed when the last model using it
stops. Clients are per event loop (their async HTTP clients belong to one).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from google import genai

__all__ = ["acquire", "release"]


def _key(value: Any) -> Any:
    """A hashable stand-in for a configuration value: plain data by value, objects by identity."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _key(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_key(v) for v in value))
    if value is None or isinstance(value, str | int | float | bool):
        return (type(value).__name__, value)
    return ("object", id(value))


class _Shared:
    __slots__ = ("client", "kwargs", "users")

    def __init__(self, client: genai.Client, kwargs: dict[str, Any]) -> None:
        self.client = client
        self.kwargs = kwargs  # keeps the objects whose ids are in the key alive
        self.users = 0


_shared: dict[Any, _Shared] = {}
_owners: dict[int, Any] = {}


def acquire(kwargs: dict[str, Any]) -> genai.Client:
    """The shared client for *kwargs* on this event loop (created on first use).

    Raises what ``genai.Client(**kwargs)`` raises.
    """
    key = (id(asyncio.get_running_loop()), _key(kwargs))
    shared = _shared.get(key)
    if shared is None:
        shared = _shared[key] = _Shared(genai.Client(**kwargs), kwargs)
        _owners[id(shared.client)] = key
    shared.users += 1
    return shared.client


async def release(client: genai.Client) -> None:
    """Give *client* back; the last user closes it."""
    key = _owners.get(id(client))
    shared = _shared.get(key) if key is not None else None
    if shared is not None and shared.client is client:
        shared.users -= 1
        if shared.users > 0:
            return
        del _shared[key]
        del _owners[id(client)]
    with contextlib.suppress(Exception):
        await client.aio.aclose()
    with contextlib.suppress(Exception):
        client.close()
