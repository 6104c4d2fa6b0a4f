"""pytest settings. DATABASE_URL / CELERY_BROKER_URL point at the servers that
`make test` starts; without them the embedded defaults are used."""

import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.base import env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-key-not-secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=tempfile.mkdtemp(prefix="dermcurate-media-")))
# The default storage follows DERMCURATE_STORAGE_BACKEND (a worker started by an S3 test gets s3).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
ML_BASE_WEIGHTS = env("ML_BASE_WEIGHTS", default="none")
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="dermcurate-static-"))
# Tests write nothing into the checkout: scratch, training work and beat's schedule go to temporary folders.
_SCRATCH = Path(tempfile.mkdtemp(prefix="dermcurate-test-var-"))
DERMCURATE_JOB_SCRATCH_DIR = Path(env("DERMCURATE_JOB_SCRATCH_DIR", default=str(_SCRATCH / "jobs")))
ML_WORK_DIR = Path(env("ML_WORK_DIR", default=str(_SCRATCH / "ml-work")))
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", default=str(_SCRATCH / "celerybeat-schedule"))
WHITENOISE_AUTOREFRESH = True
