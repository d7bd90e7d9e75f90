"""Throwaway PostgreSQL (15, or the newest installed) and Redis servers on free loopback
ports, their data in temporary directories, stopped by PID: for the scale-out tests
(tests/scaleout/conftest.py) and the benchmarks on them (bench/rasa_replicas.py,
bench/tracker_store_postgres.py). A missing binary raises :class:`ServerMissing`, saying
what to install; the tests turn it into a failure, never a skip.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shopchat.stack import free_port

__all__ = ["PG_BIN", "Postgres", "Redis", "ServerMissing", "running_postgres", "running_redis"]


def _pg_bin() -> Path:
    """Debian's PostgreSQL server binaries: version 15 (what this project is tested with)
    if installed, else the newest there is (``postgresql`` installs the release's own)."""
    installed = sorted((path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
                        if path.parent.parent.name.isdigit()),
                       key=lambda path: int(path.parent.name))
    preferred = Path("/usr/lib/postgresql/15/bin")
    return preferred if preferred in installed or not installed else installed[-1]


PG_BIN = _pg_bin()
INSTALL = "apt-get install -y --no-install-recommends postgresql redis-server"
DATABASE = "shopchat"


class ServerMissing(RuntimeError):
    """A server's binaries are not installed."""


def wait_until_gone(pid: int, timeout: float = 30) -> None:
    """Wait for a process that is not our child (a daemon) to exit; SIGKILL it if it hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@dataclass
class Postgres:
    """A PostgreSQL server on 127.0.0.1:``port`` with trust authentication."""

    port: int
    root: Path
    pid: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def psql(self, sql: str) -> str:
        """The rows ``sql`` returns, one line each, columns separated by ``|``."""
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", DATABASE, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"psql failed: {result.stderr}"
        return result.stdout.strip()

    def schemas_with_rasa_events(self) -> list[str]:
        """The schemas holding a table shaped as Rasa's tracker events (its ``type_name``
        and ``intent_name`` columns; the gateway's own ``events`` table has neither)."""
        rows = self.psql("SELECT table_schema FROM information_schema.columns "
                         "WHERE table_name = 'events' AND column_name IN "
                         "('type_name', 'intent_name') GROUP BY table_schema "
                         "HAVING count(*) = 2 ORDER BY table_schema")
        return rows.splitlines()


def _as_postgres(argv: list[str]) -> list[str]:
    """``argv`` run as the postgres user when we are root (initdb and the server refuse root)."""
    if os.geteuid() != 0:
        return argv
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A PostgreSQL 15 server with an empty database ``shopchat``, until the block ends."""
    if not (PG_BIN / "initdb").exists():
        raise ServerMissing(f"PostgreSQL is not installed ({PG_BIN}/initdb is missing): "
                            f"{INSTALL}")
    # Not under pytest's tmp dirs: those are root's alone, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="shopchat-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "server.log"
    port = free_port()
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        started = subprocess.run(_as_postgres([
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start"]), capture_output=True, text=True, timeout=120, check=False)
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n"
                               + (log.read_text() if log.exists() else ""))
        pid = int((data / "postmaster.pid").read_text().split()[0])
        server = Postgres(port, root, pid)
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", DATABASE], check=True, capture_output=True, timeout=30)
        try:
            yield server
        finally:
            os.kill(pid, signal.SIGINT)  # fast shutdown
            wait_until_gone(pid)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Redis:
    """A Redis server on 127.0.0.1:``port``, nothing saved to disk."""

    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis() -> Iterator[Redis]:
    """A Redis server that saves nothing to disk, until the block ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerMissing(f"redis-server is not installed: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="shopchat-redis-") as tmp:
        yield from _redis(binary, Path(tmp))


def _redis(binary: str, root: Path) -> Iterator[Redis]:
    port = free_port()
    pidfile = root / "redis.pid"
    subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
                    "--pidfile", str(pidfile), "--dir", str(root), "--save", "",
                    "--appendonly", "no", "--logfile", str(root / "redis.log")],
                   check=True, timeout=30)
    deadline = time.monotonic() + 30
    while not (_pong(port) and pidfile.exists()):
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not answer PING within 30 s")
        time.sleep(0.02)
    pid = int(pidfile.read_text())
    try:
        yield Redis(port, pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until_gone(pid)
