"""Run an ASGI app on a real loopback port in a background thread (tests, local mode).

Used wherever the real thing must be reached over HTTP: the emulator, the provider
simulator, the connector's own service. ``with running(app) as url: ...`` gives the base URL
(``http://127.0.0.1:PORT``) once the server accepts connections and stops it on exit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from connector.bootstrap.http_protocol import header_timeout_protocol

KEEP_ALIVE_SECONDS = 120


class ServerThread:
    """One uvicorn server on 127.0.0.1 in a daemon thread."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        header_timeout: float | None = None,
    ) -> None:
        # IPPROTO_TCP explicitly so asyncio sets TCP_NODELAY on accepted connections.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        # A long keep-alive, as real services have: uvicorn's 5 s default closes pooled
        # connections under a client that waited out a Retry-After, and a request written
        # into a closing connection is reset with no way to know whether it ran.
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            http=header_timeout_protocol(header_timeout) if header_timeout else "auto",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start serving and wait until the server is accepting connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()


@contextmanager
def running(app: Any, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on loopback for the duration of the block; yields its base URL."""
    server = ServerThread(app, port=port).start()
    try:
        yield server.url
    finally:
        server.stop()
