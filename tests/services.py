"""Throwaway PostgreSQL and Redis servers that a test or a benchmark starts, stops and restarts itself.

`scripts/with-test-services.sh` starts one of each for a whole test run; a fault test that
restarts the database, or stops the broker, needs its own so as not to pull them from under
the other tests. The same cluster set-up as that script: initdb as the postgres user when
run as root, a free port on 127.0.0.1, the socket in the work folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in Path(p).parent.name.split(".")]
    )
    return Path(found[-1]) if found else None


def postgres_available() -> bool:
    return _pg_bin() is not None


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class PostgresServer:
    """A PostgreSQL cluster of its own. `durable=False` turns fsync off (tests); True keeps
    PostgreSQL's defaults (the load benchmark: commits cost what they cost in production)."""

    def __init__(self, *, durable: bool = False, max_connections: int = 200):
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/apt-ensure.sh installs it)")
        # Right under /tmp: the postgres user cannot enter the private folders of pytest's tmp_path.
        self.workdir = Path(tempfile.mkdtemp(prefix="dermcurate-pg-"))
        self.data = self.workdir / "pg"
        self.port = free_port()
        self.durable = durable
        self.max_connections = max_connections
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.workdir, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                  "--locale=C.UTF-8")  # fmt: skip
        return self

    def start(self) -> None:
        options = [f"-p {self.port}", f"-k {self.workdir}", "-c listen_addresses=127.0.0.1",
                   f"-c max_connections={self.max_connections}"]  # fmt: skip
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.workdir / "pg.log"), "-w", "-t", "60", "start",
                  "-o", " ".join(options))  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        """Stop the server at once and delete its cluster."""
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.stop("fast")
        time.sleep(down_for)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return result.stdout.strip()

    def backend_pids(self) -> list[int]:
        """The server's processes (postmaster and its children), for CPU accounting."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        return [int(pid_file.read_text().split()[0])]


class RedisServer:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"
