"""One loopback server for many tests, each plugging in its own fresh ASGI app.

Starting a uvicorn server thread is quick; stopping one takes about 0.2 s, which adds up
over a module whose every test needs a new app. :class:`SharedServer` keeps one server for
the module (or session) and forwards every request to whatever app the running test plugged
in with :meth:`SharedServer.serving`; between tests nothing is plugged in and requests get a
404. Each test still gets a new app, so nothing but the port is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connector.bootstrap.server_thread import ServerThread


class AppSlot:
    """An ASGI app that forwards to ``app`` (``None``: 404 to everything)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = self.app
        if app is not None:
            await app(scope, receive, send)
            return
        if scope["type"] == "http":
            headers = [(b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": b"no app plugged in"})


class SharedServer:
    """A server on 127.0.0.1 serving whichever app is plugged into its slot."""

    def __init__(self) -> None:
        self._slot = AppSlot()
        self._server = ServerThread(self._slot).start()
        self.url = self._server.url

    @contextmanager
    def serving(self, app: Any) -> Iterator[str]:
        """Plug ``app`` in for the block; yields the base URL (as ``running(app)`` does)."""
        if self._slot.app is not None:
            raise RuntimeError("another app is plugged in")
        self._slot.app = app
        try:
            yield self.url
        finally:
            self._slot.app = None

    def close(self) -> None:
        """Stop the server."""
        self._server.stop()
