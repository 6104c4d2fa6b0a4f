"""Fixtures shared by every test: users per role, API clients, real workers."""

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import user_create_or_update
from tests.factories import ImageFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def make_user(username: str, *roles: str):
    user = None
    for role in roles:
        user, _ = user_create_or_update(username=username, role=role, password=PASSWORD)
    if user is None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    return user


def _run_data_migration(module: str, function: str) -> None:
    from django.apps import apps

    getattr(importlib.import_module(module), function)(apps, None)


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Transactional tests end by emptying every table, data migrations included;
    the next one gets the label classes and roles back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    _run_data_migration("accounts.migrations.0001_roles", "create_roles")
    _run_data_migration("curation.migrations.0002_label_classes", "create_label_classes")


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path_factory):
    """Each test stores files in a media folder of its own."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture
def reviewer(db):
    return make_user("reviewer1", Role.REVIEWER)


@pytest.fixture
def reviewer2(db):
    return make_user("reviewer2", Role.REVIEWER)


@pytest.fixture
def adjudicator(db):
    return make_user("senior", Role.ADJUDICATOR)


@pytest.fixture
def curator(db):
    return make_user("curator", Role.CURATOR)


@pytest.fixture
def exporter(db):
    return make_user("exporter", Role.EXPORTER)


@pytest.fixture
def no_role_user(db):
    return make_user("nobody")


@pytest.fixture
def image_factory(db):
    return ImageFactory


def api_client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client


@pytest.fixture
def api():
    """api(user) → an authenticated DRF test client; api(None) → anonymous."""
    return api_client_for


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process that shares this test run's database and media."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    # The same scratch and work folders, so that a test can see what a worker leaves there.
    env["DERMCURATE_JOB_SCRATCH_DIR"] = str(settings.DERMCURATE_JOB_SCRATCH_DIR)
    env["ML_WORK_DIR"] = str(settings.ML_WORK_DIR)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    env.update(overrides)
    return env


class WorkerProcess:
    """A real `celery worker` child process, in a process group of its own (with `beat`, it also runs
    Celery beat's schedule). kill() and stop() end the whole group: pool processes included."""

    def __init__(self, *, queues: str, env: dict[str, str], log_path: Path, pool: str = "prefork", beat: bool = False):
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            "1",
            "--pool",
            pool,
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--hostname",
            f"test-{queues}-{os.getpid()}-{log_path.stem}@%h",
        ]
        if beat:
            command.append("--beat")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, signal_number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal_number)

    def kill(self) -> None:
        """SIGKILL the worker and every process it started, as a crash or the OOM killer would."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        # Whatever is left of the group (pool processes, a resource tracker) goes too.
        self._signal_group(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(queues="default", **env) → a ready WorkerProcess, stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(
        queues: str = "default", pool: str = "prefork", beat: bool = False, **env_overrides: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            queues=queues,
            env=subprocess_env(**env_overrides),
            pool=pool,
            beat=beat,
            log_path=tmp_path / f"worker-{len(workers)}.log",
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
