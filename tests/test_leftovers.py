"""Tests leave nothing behind: tests/conftest.py fails the run when a process it started outlives it or
when it wrote into the checkout. These tests check that those two checks see what they must."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings

from tests.conftest import REPO_ROOT, processes_of_this_run, untracked_paths


def test_a_process_started_by_the_run_is_seen_until_it_ends_even_in_a_session_of_its_own():
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        seen_alive = child.pid in processes_of_this_run()
    finally:
        child.kill()
        child.wait()

    assert seen_alive
    assert child.pid not in processes_of_this_run()


def test_a_file_written_into_the_checkout_is_seen():
    probe = REPO_ROOT / f"leftover-probe-{uuid.uuid4().hex}.txt"
    probe.write_text("x")
    try:
        seen = probe.name in untracked_paths()
    finally:
        probe.unlink()

    assert seen
    assert probe.name not in untracked_paths()


def test_everything_the_settings_put_under_var_lies_outside_the_checkout_and_children_share_it():
    folders = {
        "VAR_DIR": settings.VAR_DIR,
        "STATIC_ROOT": settings.STATIC_ROOT,
        "DERMCURATE_JOB_SCRATCH_DIR": settings.DERMCURATE_JOB_SCRATCH_DIR,
        "ML_WORK_DIR": settings.ML_WORK_DIR,
        "CELERY_BEAT_SCHEDULE_FILENAME": settings.CELERY_BEAT_SCHEDULE_FILENAME,
        "CELERY_BROKER_DIR": settings.CELERY_BROKER_DIR,
    }
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(str(s.VAR_DIR)))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
    )

    for name, folder in folders.items():
        assert not Path(folder).resolve().is_relative_to(REPO_ROOT), name
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.strip().splitlines()[-1]) == str(settings.VAR_DIR)
