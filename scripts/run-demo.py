#!/usr/bin/env python3
"""Run the web server, a Celery worker and Celery beat on the embedded defaults (SQLite and the
filesystem broker under var/); Ctrl-C stops all three and exits 0.

`make demo` runs this last. Ctrl-C at a terminal interrupts every process of the terminal's
foreground process group, make included, and GNU make answers SIGINT by killing its recipe and
failing ("make: *** [demo] Error 130"). So this supervisor puts itself in a process group of its
own and makes that the terminal's foreground group (giving the terminal back to make's group when
it ends): Ctrl-C then reaches it alone. Each service runs in a session of its own and is stopped
through its process group, SIGTERM first, SIGKILL for what is left.

Environment: DERMCURATE_PORT (default 8000), DERMCURATE_VAR_DIR (default var), ML_BASE_WEIGHTS
(default none here: a demo machine may have no route to Google's storage).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
stop_requested = False


def _request_stop(signum, frame):
    # Only a flag: a service being started when Ctrl-C comes is still recorded, and stopped.
    global stop_requested
    stop_requested = True


class Terminal:
    """Holds the terminal's foreground process group while the services run."""

    def __init__(self):
        self.fd = None
        self.previous_group = None

    def take(self) -> None:
        if not os.isatty(0):
            return
        try:
            previous = os.tcgetpgrp(0)
            os.setpgid(0, 0)
        except OSError:  # a session leader cannot move (started by setsid): nothing to take
            return
        # A background group that sets the foreground group gets SIGTTOU unless it ignores it.
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.tcsetpgrp(0, os.getpgrp())
            self.fd, self.previous_group = 0, previous

    def give_back(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.fd, self.previous_group)
            self.fd = None


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    # A session of its own: the terminal's signals never reach it; it is stopped through its group.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603 (our own commands)


def stop(services: dict[str, subprocess.Popen]) -> None:
    for process in services.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in services.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in services.values():
        # Whatever is left of each group (a pool process, a straggler) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_up(url: str, web: subprocess.Popen) -> None:
    for _ in range(150):
        if web.poll() is not None or stop_requested:
            return
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 (http://127.0.0.1 built here)
            return
        time.sleep(0.2)


def main() -> int:
    port = os.environ.get("DERMCURATE_PORT", "8000")
    var_dir = Path(os.environ.get("DERMCURATE_VAR_DIR", "var"))
    if not var_dir.is_absolute():
        var_dir = ROOT / var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ML_BASE_WEIGHTS": os.environ.get("ML_BASE_WEIGHTS", "none")}
    celery = [sys.executable, "-m", "celery", "-A", "config"]

    terminal = Terminal()
    terminal.take()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _request_stop)
    services: dict[str, subprocess.Popen] = {}
    status = 0
    try:
        services["worker"] = start(
            [
                *celery,
                "worker",
                "-Q",
                "default,training,scoring,inference",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--logfile",
                str(var_dir / "worker.log"),
            ],
            env,
        )
        # Celery beat fails jobs whose worker stopped beating (see DERMCURATE_JOB_STALE_SECONDS).
        services["beat"] = start(
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--logfile",
                str(var_dir / "beat.log"),
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ],
            env,
        )
        services["web server"] = start(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env
        )
        wait_until_up(f"http://127.0.0.1:{port}/healthz", services["web server"])
        if not stop_requested:
            print(
                f"\nDermCurate runs at http://127.0.0.1:{port}/  (worker log: {var_dir / 'worker.log'}; "
                "Ctrl-C stops web, worker and beat)\n",
                flush=True,
            )
        while not stop_requested:
            ended = [name for name, process in services.items() if process.poll() is not None]
            if ended:
                print(f"\nThe {ended[0]} stopped (exit status {services[ended[0]].returncode}).", flush=True)
                status = 1
                break
            time.sleep(0.2)
    finally:
        # A second Ctrl-C while stopping must not leave the services behind.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        print("\nStopping the web server, the worker and beat ...", flush=True)
        stop(services)
        terminal.give_back()
        print("Stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
