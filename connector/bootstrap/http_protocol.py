"""uvicorn's HTTP protocol with a header read timeout: a slow-header connection is closed.

uvicorn times out idle keep-alive connections, but not a connection that has not finished
sending a request's headers (a new connection that sends nothing, or one byte at a time):
thousands of such connections stay open for ever. :func:`header_timeout_protocol` returns
uvicorn's httptools protocol with one more timer: armed when a connection opens and when a
request's first byte arrives, cancelled once its headers are complete; when it fires, the
connection is closed. Bodies are bounded by the app (:mod:`connector.api.bounds`).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools protocol closing connections whose headers take over ``header_timeout`` s."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol closing connections whose headers take over ``seconds``."""
    return type("HeaderTimeoutProtocol", (_HeaderTimeoutProtocol,), {"header_timeout": seconds})
