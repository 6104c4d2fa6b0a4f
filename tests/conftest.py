"""Fixtures shared by every test: users per role, API clients, real workers."""

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import user_create_or_update
from tests.factories import ImageFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"

# Every process this test run starts inherits this mark, even when it leaves the run's process tree.
TEST_RUN_MARK = "DERMCURATE_TEST_RUN"
os.environ[TEST_RUN_MARK] = f"{os.getpid()}-{uuid.uuid4().hex}"
# Folders that tools write into the checkout: Python's byte code, pytest's and ruff's caches.
TOOL_FOLDERS = ("__pycache__", ".pytest_cache", ".ruff_cache")
ARTIFACTS = "test-artifacts/"


# multiprocessing's helper of this very process (an in-process import pool starts it): it reads a pipe
# from this process and ends with it.
OWN_HELPERS = ("from multiprocessing.resource_tracker import main", "from multiprocessing.forkserver import main")


def processes_of_this_run() -> dict[int, str]:
    """pid → command line of every live process (but this one and its multiprocessing helpers) started
    by this test run."""
    mark = f"{TEST_RUN_MARK}={os.environ[TEST_RUN_MARK]}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state == "Z":
                continue  # exited, waiting for its parent to read its status
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if int(parent) == os.getpid() and any(helper in command for helper in OWN_HELPERS):
            continue
        found[int(entry.name)] = command
    return found


def untracked_paths() -> set[str]:
    """What the checkout holds that git does not track (ignored files too), tools' caches aside."""
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--directory", "--no-empty-directory"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        return set()  # not a git checkout
    return {path for path in listing.stdout.splitlines() if not any(part in TOOL_FOLDERS for part in Path(path).parts)}


def pytest_sessionstart(session):
    session.config.untracked_at_start = untracked_paths()


def pytest_sessionfinish(session, exitstatus):
    """The run fails if a process it started is still alive, or if it wrote into the checkout."""
    problems = []
    deadline = time.monotonic() + 10  # a process stopped by the last test may take a moment to exit
    while (alive := processes_of_this_run()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, command in alive.items():
        problems.append(f"still running after the tests, now killed: pid {pid}: {command}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    written = untracked_paths() - getattr(session.config, "untracked_at_start", set())
    problems += [f"written into the checkout: {path}" for path in sorted(written) if not path.startswith(ARTIFACTS)]
    var_dir = Path(settings.VAR_DIR)
    if var_dir.parent == Path(tempfile.gettempdir()) and var_dir.name.startswith("dermcurate-test-var-"):
        shutil.rmtree(var_dir, ignore_errors=True)
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.ensure_newline()
            reporter.write_line("The tests left something behind, so the run fails:", red=True, bold=True)
            for problem in problems:
                reporter.write_line(f"  {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    _run_data_migration("accounts.migrations.0002_predictor_role", "create_predictor_role")
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
def predictor(db):
    return make_user("clinic-app", Role.PREDICTOR)


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
    env.update(_storage_env())
    env.update(overrides)
    return env


# django-storages' S3Storage option → the variable that config/settings/base.py reads it from.
S3_OPTION_VARIABLES = {
    "bucket_name": "AWS_STORAGE_BUCKET_NAME",
    "endpoint_url": "AWS_S3_ENDPOINT_URL",
    "region_name": "AWS_S3_REGION_NAME",
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "addressing_style": "AWS_S3_ADDRESSING_STYLE",
}


def _storage_env() -> dict[str, str]:
    """The storage this test uses, as the environment a child process builds it from."""
    default = settings.STORAGES["default"]
    if default["BACKEND"] != "storages.backends.s3.S3Storage":
        return {"DERMCURATE_STORAGE_BACKEND": "filesystem"}
    options = default.get("OPTIONS", {})
    env = {"DERMCURATE_STORAGE_BACKEND": "s3"}
    env.update({variable: options[option] for option, variable in S3_OPTION_VARIABLES.items() if options.get(option)})
    return env


class S3Bucket:
    """The test's bucket, read with a client of its own (not through the project's code)."""

    def __init__(self, client, name: str):
        self.client = client
        self.name = name

    def object_keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone server: a real S3 HTTP endpoint on a free port of 127.0.0.1, one per session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    """DERMCURATE_STORAGE_BACKEND=s3 for one test, on a new bucket; returns that bucket.

    Overriding STORAGES resets Django's storage cache (its setting_changed receiver), so
    `default_storage` and every FileField use the bucket; child processes get the same through
    subprocess_env."""
    import boto3

    options = {
        "bucket_name": f"dermcurate-test-{uuid.uuid4().hex[:12]}",
        "endpoint_url": s3_endpoint,
        "region_name": "us-east-1",
        "access_key": "test-access-key",
        "secret_key": "test-secret-key",
        "addressing_style": "path",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    )
    client.create_bucket(Bucket=options["bucket_name"])
    settings.DERMCURATE_STORAGE_BACKEND = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    bucket = S3Bucket(client, options["bucket_name"])
    yield bucket
    for key in bucket.object_keys():
        client.delete_object(Bucket=bucket.name, Key=key)
    client.delete_bucket(Bucket=bucket.name)


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
