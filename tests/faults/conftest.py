"""Fault tests: a real gunicorn (production settings) against real PostgreSQL and Redis that the
test stops, restarts or fills up. Each is bounded in time."""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, subprocess_env
from tests.services import free_port


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment of a production web process, sharing this test's database and media."""
    env = subprocess_env()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_CONN_MAX_AGE": "60",
            "DERMCURATE_VAR_DIR": str(tmp_path / "var"),
            "GUNICORN_ACCESS_LOG": "",
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "4",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    started: float
    finished: float

    def json(self):
        return json.loads(self.body)


@dataclass
class WebServer:
    """`gunicorn -c gunicorn.conf.py config.wsgi:application` on a free port of 127.0.0.1."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "WebServer":
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             "config.wsgi:application"],
            cwd=REPO_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            with contextlib.suppress(OSError):
                self.request("GET", "/healthz", timeout=5)  # any answer (503 too: a broker may be down)
                return self
            time.sleep(0.3)
        raise TimeoutError(f"gunicorn did not answer:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def request(self, method: str, path: str, *, token: str = "", data=None, files=None, timeout=15) -> Answer:
        headers = {"Authorization": f"Token {token}"} if token else {}
        body = None
        if files is not None:
            body, content_type = _multipart(data or {}, files)
            headers["Content-Type"] = content_type
        elif data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)  # noqa: S310  (127.0.0.1)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (127.0.0.1)
                return Answer(response.status, dict(response.headers), response.read(), started, time.monotonic())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read(), started, time.monotonic())


def _multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def start_web(tmp_path):
    """start_web(env) → a started WebServer, stopped after the test."""
    servers: list[WebServer] = []

    def start(env: dict[str, str]) -> WebServer:
        server = WebServer(env=env, log_path=tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def manage(env: dict[str, str], *args: str, code: str = "") -> str:
    """Run `manage.py ARGS` (or `manage.py shell -c CODE`) in a child process with `env`."""
    command = [sys.executable, "manage.py", *args] if not code else [sys.executable, "manage.py", "shell", "-c", code]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args) or 'shell'} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
