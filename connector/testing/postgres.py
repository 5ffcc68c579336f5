"""Start a throwaway PostgreSQL server for tests and benchmarks (real server, loopback only).

The state store runs on PostgreSQL when the connector scales out, so its tests run against a
real server, not a mock. :func:`start_postgres` initialises a cluster in a temporary folder,
starts it on a free 127.0.0.1 port with fsync off (test data is disposable) and returns a
handle with its SQLAlchemy URL. ``durable=True`` keeps synchronous commits, so a server
stopped with ``halt()`` (as by a crash) and started again by ``resume()`` keeps every
transaction it acknowledged (the reliability report restarts it mid-run). PostgreSQL
refuses to run as root; when we are root the cluster is owned by and run as the
``postgres`` system user, which Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (Debian's versioned folder first)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running throwaway cluster."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None
    durable: bool = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603

    def halt(self) -> None:
        """Stop the server at once (``immediate``: as a crash would), keeping its files."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        """Start the halted server again on the same port (it recovers from its WAL)."""
        root = self.data_dir.parent
        commits = "" if self.durable else "-c synchronous_commit=off "
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={root} "
            f"-c fsync=off {commits}-c full_page_writes=off -c max_connections=200"
        )
        log = str(root / "log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """Initialise and start a cluster; raises RuntimeError if PostgreSQL is not installed.

    ``durable``: commits are acknowledged only once in the WAL (survive ``halt()``).
    """
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    data_dir = root / "data"
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir, data_dir, _free_port(), run_as, durable)
    server._run("initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    server.resume()
    return server
