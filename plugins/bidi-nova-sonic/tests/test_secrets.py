"""AWS credentials never show: repr, str, DEBUG logs of every logger, events, errors.

The secret access key signs every request and event (SigV4) but is never sent; the
session token is sent as a header. Neither may appear anywhere a user or a log file
could see it, also when the service rejects the request or echoes them in an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import boto3
import pytest

from bidi_core import BidiConnectionError, BidiErrorEvent, BidiTextInputEvent
from bidi_nova_sonic import NOVA_2_MODEL_ID, NovaSonicModel
from bidi_nova_sonic.testing import FakeNovaServer, serve

ACCESS_KEY = "AKIDSECRETSTEST00001"
SECRET_KEY = "wJalrXUtnFEMI-secrets-test-0123456789abcd"
TOKEN = "FwoGZXIvYXdzEJr-session-token-secrets-test-0123456789"
HIDDEN = (SECRET_KEY, TOKEN)


def leaks(caplog: pytest.LogCaptureFixture, *texts: Any) -> list[str]:
    """Every captured log record (any logger, with args and tracebacks) and text that shows one."""
    found = [str(t)[:200] for t in texts if any(h in str(t) for h in HIDDEN)]
    for record in caplog.records:
        if record.name.startswith(("bidi_nova_sonic.testing", "hpack", "h2")):
            continue  # the fake's own side (its h2 server): test infrastructure
        rendered = f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        if any(h in rendered for h in HIDDEN):
            found.append(rendered[:200])
    return found


def model_for(fake: FakeNovaServer, secret: str = SECRET_KEY) -> NovaSonicModel:
    session = boto3.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        aws_session_token=TOKEN,
        region_name="us-east-1",
    )
    client = {**fake.model_kwargs["client_config"], "boto_session": session}
    return NovaSonicModel(model_id=NOVA_2_MODEL_ID, client_config=client)


async def drain(events: Any, seen: list[Any], stop: type | None = None) -> None:
    """Read events (keeping their dicts) until one of type *stop*, or until receive() raises."""
    async with asyncio.timeout(20):
        async for event in events:
            seen.append(event.to_dict())
            if stop is not None and isinstance(event, stop):
                return


async def test_aws_credentials_never_appear(caplog: pytest.LogCaptureFixture) -> None:
    """Used to sign, but absent everywhere a user or a log file could see them."""
    caplog.set_level(logging.DEBUG)  # every logger: botocore, boto3, smithy, awscrt, bidi ...
    seen: list[Any] = []
    async with serve(credentials={ACCESS_KEY: SECRET_KEY}) as fake:
        # 1. A request rejected for a bad signature (a wrong secret).
        model = model_for(fake, secret=SECRET_KEY[::-1])
        seen += [repr(model), str(model), model.config, repr(model.config)]
        with pytest.raises(BidiConnectionError) as rejected:
            await model.start()
        seen += [str(rejected.value), repr(rejected.value), repr(rejected.value.__cause__)]
        # 2. A working stream; then stream exceptions that echo the credentials.
        model = model_for(fake)
        seen += [repr(model), model.config]
        await model.start()
        events = model.receive()
        try:
            await model.send(BidiTextInputEvent(text="hello"))
            await fake.inject_exception("validationException", f"bad token {TOKEN} {SECRET_KEY}")
            await drain(events, seen, BidiErrorEvent)
            seen += [repr(model), repr(model.conversation), model.access_keys_used]
        finally:
            await model.stop()
        assert fake.requests[-1].signature_valid  # the secret really signed the request
        assert fake.requests[-1].headers.get("x-amz-security-token") == TOKEN
    found = leaks(caplog, *seen)
    assert found == [], "\n".join(found)
