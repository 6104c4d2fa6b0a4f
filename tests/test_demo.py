"""The README's first command on embedded defaults: SQLite, the filesystem broker, a real worker."""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
EMBEDDED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def embedded_env(var_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED}
    env["DERMCURATE_VAR_DIR"] = str(var_dir)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_sets_up_sqlite_users_images_and_a_snapshot_and_runs_web_and_worker_until_ctrl_c(tmp_path):
    env = embedded_env(tmp_path / "var")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)

    demo = subprocess.run([*manage, "demo", "--per-class", "4"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    again = subprocess.run(
        [*manage, "demo", "--per-class", "4"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )

    assert demo.returncode == 0, demo.stderr
    logins = json.loads((tmp_path / "var" / "demo_logins.json").read_text())
    for username in ("ana", "ben", "carla", "curator"):
        assert f"{username:<10} password: {logins[username]}" in demo.stdout
    assert "Imported 44 new images" in demo.stdout
    assert "Froze snapshot 'demo-v1'" in demo.stdout
    assert (tmp_path / "var" / "db.sqlite3").exists() and (tmp_path / "var" / "media" / "images").is_dir()
    assert again.returncode == 0 and "Imported" not in again.stdout, "running it again adds nothing"
    assert logins == json.loads((tmp_path / "var" / "demo_logins.json").read_text()), "the same logins"

    port = free_port()
    server = subprocess.Popen(
        ["scripts/run-demo.sh"],
        cwd=REPO_ROOT,
        env={**env, "DERMCURATE_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()
    announced = f"DermCurate runs at http://127.0.0.1:{port}/"
    output = ""
    try:
        # The script says where it runs once its web server answers.
        deadline = time.monotonic() + 90
        while announced not in output and time.monotonic() < deadline:
            try:
                output += lines.get(timeout=1)
            except queue.Empty:
                assert server.poll() is None, output
        assert announced in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
            assert b"Sign in" in response.read()
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    time.sleep(0.5)  # let the reader thread drain what the script printed last
    while not lines.empty():
        output += lines.get()
    assert "Stopped." in output
    assert server.returncode is not None
    for pattern in (f"runserver 127.0.0.1:{port}", f"{tmp_path}/var/worker.log"):
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", f"still running: {pattern}"
