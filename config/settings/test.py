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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ML_BASE_WEIGHTS = env("ML_BASE_WEIGHTS", default="none")
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="dermcurate-static-"))
WHITENOISE_AUTOREFRESH = True
