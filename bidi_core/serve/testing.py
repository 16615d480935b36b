"""Run a ``bidi serve`` gateway inside a test, and talk to it as the ``remote`` model.

::

    from bidi_core.serve.testing import gateway

    async with gateway("openai_realtime", model_kwargs=fake.model_kwargs) as gw:
        await case.run(gw.remote_model)      # a fresh RemoteModel per call

Every model the gateway builds is kept in ``gw.models`` (in session order), so a test
can check what reached it (``SimulatedModel.truncations``, its assistant's inputs).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs

from .._protocol import BidiModel
from .._registry import Registry, default_registry
from ._app import create_app
from ._config import ServeConfig
from ._run import serving

__all__ = ["Gateway", "gateway"]


@attrs.define
class Gateway:
    """A running gateway.

    Attributes:
        url: Its base URL, e.g. ``http://127.0.0.1:54321``.
        config: What it serves.
        models: Every model it built for a session, oldest first.
        app: The ASGI app.
    """

    url: str
    config: ServeConfig
    models: list[BidiModel]
    app: Any

    @property
    def ws_url(self) -> str:
        """The session endpoint, ``ws://127.0.0.1:<port>/v1/session``."""
        return self.url.replace("http://", "ws://", 1) + "/v1/session"

    @property
    def twilio_url(self) -> str:
        """The Twilio endpoint, ``ws://127.0.0.1:<port>/v1/twilio``."""
        return self.url.replace("http://", "ws://", 1) + "/v1/twilio"

    def remote_model(self, **client_config: Any) -> BidiModel:
        """A new ``remote`` model connected to this gateway (token included, if any)."""
        from ..remote import RemoteModel  # noqa: PLC0415 - websockets on use

        config: dict[str, Any] = {"url": self.ws_url}
        if self.config.token is not None:
            config["token"] = self.config.token.reveal()
        config.update(client_config)
        return RemoteModel(client_config=config)


@contextlib.asynccontextmanager
async def gateway(
    model: str = "simulated",
    *,
    model_kwargs: dict[str, Any] | None = None,
    model_factory: Callable[[], BidiModel] | None = None,
    registry: Registry | None = None,
    tool_functions: Sequence[Callable[..., Any]] = (),
    **config: Any,
) -> AsyncIterator[Gateway]:
    """Run a gateway on 127.0.0.1 in this event loop until the block ends.

    Args:
        model: Registry name of the model every session talks to.
        model_kwargs: ``get_model()`` keywords (e.g. a fake server's ``model_kwargs``).
        model_factory: Builds each session's model instead (``model`` is then a label).
        registry: Where *model* is looked up.
        tool_functions: Tools as functions (``tools=`` takes ``module:function`` specs).
        **config: Other :class:`ServeConfig` fields (``tools``, ``token``, limits...).
    """
    serve_config = ServeConfig(model=model, model_kwargs=model_kwargs or {}, port=0, **config)
    models: list[BidiModel] = []
    chosen = registry or default_registry()

    def build() -> BidiModel:
        made = (
            model_factory()
            if model_factory is not None
            else chosen.get_model(model, **serve_config.model_kwargs)
        )
        models.append(made)
        return made

    app = create_app(serve_config, model_factory=build, tools=tool_functions)
    models.clear()  # create_app() built one to check the settings
    async with serving(app, serve_config) as url:
        yield Gateway(url=url, config=serve_config, models=models, app=app)
