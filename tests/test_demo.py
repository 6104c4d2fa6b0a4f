"""The README's first command on embedded defaults: SQLite, the filesystem broker, a real worker."""

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from labeling.management.commands.demo import LOGINS as DEMO_ROLES
from tests.conftest import REPO_ROOT, processes_of_this_run

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


def test_demo_sets_up_sqlite_users_images_and_a_snapshot_and_make_demo_runs_until_ctrl_c(tmp_path):
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

    summary = subprocess.run(
        [*manage, "demo", "--per-class", "4", "--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert summary.returncode == 0, summary.stderr
    printed = json.loads(summary.stdout)  # with --json, one JSON object is all it prints
    assert printed["logins"] == [
        {"username": name, "role": role, "password": logins[name]} for name, role in DEMO_ROLES
    ]
    assert printed["logins_file"] == str(tmp_path / "var" / "demo_logins.json")
    assert (printed["imported"], printed["snapshot"]) == (0, None), "nothing new the third time"
    assert sum(printed["images"].values()) == 44

    ctrl_c_on_make_demo_stops_everything_and_exits_0(env, tmp_path)


def ctrl_c_on_make_demo_stops_everything_and_exits_0(env: dict[str, str], tmp_path) -> None:
    """`make demo` at a terminal (a pseudo-terminal here), then Ctrl-C: web, worker and beat stop,
    "Stopped." is printed, and make exits 0 (GNU make would say "Error 130" had Ctrl-C reached it)."""
    if subprocess.run(["make", "-q", ".venv/bin/.runtime"], cwd=REPO_ROOT, capture_output=True).returncode != 0:
        pytest.skip("make demo would first (re)install .venv; run through make test")
    port = free_port()
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty, as in a shell
        os.chdir(REPO_ROOT)
        os.execvpe(  # noqa: S606 (make, with the demo's environment)
            "make",
            ["make", "--no-print-directory", "demo", "DEMO_ARGS=--per-class 4"],
            {**env, "DERMCURATE_PORT": str(port)},
        )
    output = b""

    def read_until(text: bytes, timeout: float) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while text not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # the other side is closed: everything has exited
                    return
                if not chunk:
                    return
                output += chunk

    def demo_processes() -> dict[int, str]:
        return {
            pid: command
            for pid, command in processes_of_this_run().items()
            if f"127.0.0.1:{port}" in command or str(tmp_path) in command
        }

    try:
        read_until(f"DermCurate runs at http://127.0.0.1:{port}/".encode(), timeout=120)
        assert f"DermCurate runs at http://127.0.0.1:{port}/".encode() in output, output.decode(errors="replace")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
            assert b"Sign in" in response.read()

        os.write(terminal, b"\x03")  # Ctrl-C, as typed
        read_until(b"Stopped.", timeout=60)
        read_until(b"\0never", timeout=3)  # whatever make prints after the recipe ends
        _, wait_status = os.waitpid(pid, 0)
    except BaseException:
        # Something failed on the way: leave nothing running (make, the runner, the services).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for leftover in demo_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(terminal)
    text = output.decode(errors="replace")

    assert os.waitstatus_to_exitcode(wait_status) == 0, text
    assert "Stopped." in text
    assert "Error" not in text and "make: ***" not in text, text
    assert demo_processes() == {}, "web, worker and beat are all gone"
