"""pytest settings. DATABASE_URL / CELERY_BROKER_URL point at the servers that
`make test` starts; without them the embedded defaults are used."""

import os
import tempfile

# Tests write nothing into the checkout: what the settings put under var/ (media, static files, job
# scratch, training work, beat's schedule, an embedded database or broker) goes to a temporary folder.
# Set in the environment, so that the workers and commands a test starts use the same one;
# tests/conftest.py removes it at the end of the run.
os.environ.setdefault("DERMCURATE_VAR_DIR", tempfile.mkdtemp(prefix="dermcurate-test-var-"))

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-key-not-secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The default storage follows DERMCURATE_STORAGE_BACKEND (a worker started by an S3 test gets s3).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
ML_BASE_WEIGHTS = env("ML_BASE_WEIGHTS", default="none")
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_AUTOREFRESH = True
# The suite is not throttled; tests of throttling set DERMCURATE_API_RATES themselves.
DERMCURATE_API_RATES = {"user": None, "anon": None}
