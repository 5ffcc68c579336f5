"""Start a throwaway Redis server for tests and benchmarks (real server, loopback only).

A fleet's task queue is huey on Redis, so its tests run against a real ``redis-server``
(Debian's package, installed by ``scripts/ensure-test-services.sh``), not a mock.
:func:`start_redis` starts one on a free 127.0.0.1 port with persistence off, its files in a
temporary folder, and returns a handle with its URL; :meth:`RedisServer.stop` ends it and
deletes the folder. :meth:`RedisServer.restart` stops and starts it on the same port (what a
fault scenario needs).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def find_redis_server() -> Path | None:
    """The ``redis-server`` executable, or None when Redis is not installed."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """Whether a Redis server on ``port`` answers ``PING`` (plain RESP over a socket)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A running throwaway Redis server."""

    executable: Path
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the server and wait until it answers; RuntimeError if it does not."""
        command = [
            str(self.executable),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.port):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")

    def kill(self) -> None:
        """End the server at once (SIGKILL: nothing is saved, as persistence is off anyway)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port (its data is gone)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_redis() -> RedisServer:
    """Start a server on a free loopback port; RuntimeError if Redis is not installed."""
    executable = find_redis_server()
    if executable is None:
        raise RuntimeError("Redis is not installed (apt-get install redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="connector-redis-"))
    return RedisServer(executable, folder, _free_port()).start()
