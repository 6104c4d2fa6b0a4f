"""Settings shared by every environment; values come from the environment.

With no variables set the product runs on embedded defaults: SQLite and media
under `var/`, and Celery on kombu's filesystem broker under `var/`, so a real
worker process runs without PostgreSQL or Redis.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env("DERMCURATE_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "core",
    "accounts",
    "curation",
    "labeling",
    "ml",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Celery worker write to the same file: wait for
    # the lock instead of failing at once, and take the write lock up front.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media is never served from a public URL: every file goes through a view that checks the
# caller's role (curation.views.image_file, ml.views.model_file) and streams it.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-public/"
# Where originals, served copies, thumbnails, uploaded zips, models and plots live: `filesystem`
# (MEDIA_ROOT) or `s3` (an S3-compatible bucket such as MinIO, shared by web, workers and trainers
# on any machine). The AWS_* names are django-storages' own.
DERMCURATE_STORAGE_BACKEND = env("DERMCURATE_STORAGE_BACKEND", default="filesystem")
if DERMCURATE_STORAGE_BACKEND == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif DERMCURATE_STORAGE_BACKEND == "s3":
    AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("DERMCURATE_STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket's name).")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),  # unset: Amazon S3 itself
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            # Unset keys: boto3's own chain (its environment variables, an instance role, ...).
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default=None),  # MinIO: path
            # Never public: objects get the bucket's (private) ACL and any URL the storage makes is signed.
            "default_acl": None,
            "querystring_auth": True,
            # Every name the app writes is unique or names its content (sha256), so a write replaces
            # in place without a HEAD request first (uploaded zips get a random prefix).
            "file_overwrite": True,
        },
    }
else:
    raise ImproperlyConfigured(
        f"DERMCURATE_STORAGE_BACKEND={DERMCURATE_STORAGE_BACKEND!r} is not known: use filesystem or s3."
    )
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The API takes JSON; an upload (POST /api/v1/imports/) says multipart itself.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "core.api.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # ?format= is the export's own parameter (csv, jsonl), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DermCurate API",
    "DESCRIPTION": "Curate, label and export skin-disease photos; train and serve classifiers.",
    "VERSION": "1.0.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Content-Security-Policy (django-csp) -------------------------------------
# Scripts, styles, images and connections come from this site only; no inline
# script anywhere (page code lives in static/js/, a test keeps templates free of
# it). Inline style *attributes* stay allowed (progress bars and heat maps set a
# width or a colour per row); <style> elements and inline scripts do not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "celery-broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    _default_result_backend = f"file://{CELERY_BROKER_DIR / 'results'}"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    _default_result_backend = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="") or _default_result_backend
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_IMPORTS = ["core.tasks"]
CELERY_TASK_ROUTES = {"ml.tasks.training_run_execute_task": {"queue": "training"}}
# Celery beat (`make demo` and the compose file run it): the worker side fails jobs whose
# heartbeat went stale and sends jobs the broker missed.
DERMCURATE_JOB_SWEEP_SECONDS = env.float("DERMCURATE_JOB_SWEEP_SECONDS", default=30)
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {"task": "core.tasks.jobs_sweep_task", "schedule": DERMCURATE_JOB_SWEEP_SECONDS},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SYNC_EVERY = 1  # the schedule file is written after each sweep: the compose health check reads it
# Global ceilings; long tasks set their own, larger limits.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=16 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- DermCurate ---------------------------------------------------------------
# Jobs (imports, training runs, …): a running job beats every HEARTBEAT seconds; one whose last
# beat is older than STALE seconds is failed by the beat task. Scratch folders live under SCRATCH_DIR.
DERMCURATE_JOB_HEARTBEAT_SECONDS = env.float("DERMCURATE_JOB_HEARTBEAT_SECONDS", default=10)
DERMCURATE_JOB_STALE_SECONDS = env.int("DERMCURATE_JOB_STALE_SECONDS", default=120)
DERMCURATE_JOB_SCRATCH_DIR = Path(env("DERMCURATE_JOB_SCRATCH_DIR", default=str(VAR_DIR / "jobs")))
DERMCURATE_REVIEWS_REQUIRED = env.int("DERMCURATE_REVIEWS_REQUIRED", default=2)
DERMCURATE_LEASE_SECONDS = env.int("DERMCURATE_LEASE_SECONDS", default=10 * 60)
DERMCURATE_SKIP_SECONDS = env.int("DERMCURATE_SKIP_SECONDS", default=24 * 3600)
DERMCURATE_UNDO_SECONDS = env.int("DERMCURATE_UNDO_SECONDS", default=5 * 60)
DERMCURATE_QUEUE_ORDER = env("DERMCURATE_QUEUE_ORDER", default="random")
DERMCURATE_REVEAL_SOURCE_LABEL = env.bool("DERMCURATE_REVEAL_SOURCE_LABEL", default=False)
DERMCURATE_MAX_IMAGE_PIXELS = env.int("DERMCURATE_MAX_IMAGE_PIXELS", default=50_000_000)
DERMCURATE_SANITIZED_MAX_SIDE = env.int("DERMCURATE_SANITIZED_MAX_SIDE", default=1024)
DERMCURATE_THUMBNAIL_MAX_SIDE = env.int("DERMCURATE_THUMBNAIL_MAX_SIDE", default=256)
# Near duplicates: pairs whose pHashes lie within this many bits are checked too (besides the
# fingerprint candidates); every pair is verified on fingerprints. See curation/dedup.py, bench/RESULTS.md.
DERMCURATE_NEAR_DUPLICATE_THRESHOLD = env.int("DERMCURATE_NEAR_DUPLICATE_THRESHOLD", default=6)
# Rows committed together by an import (also how much a killed import redoes).
DERMCURATE_IMPORT_CHUNK_SIZE = env.int("DERMCURATE_IMPORT_CHUNK_SIZE", default=200)
# Files per import chunk: the unit of work that several workers (on several machines) share.
DERMCURATE_IMPORT_FILES_PER_CHUNK = env.int("DERMCURATE_IMPORT_FILES_PER_CHUNK", default=500)
# Images whose shorter side is under this many pixels are rejected ("too small").
DERMCURATE_MIN_IMAGE_SIDE = env.int("DERMCURATE_MIN_IMAGE_SIDE", default=64)
DERMCURATE_IMPORT_WORKERS = env.int("DERMCURATE_IMPORT_WORKERS", default=0)  # 0: one per core
DERMCURATE_ZIP_MAX_BYTES = env.int("DERMCURATE_ZIP_MAX_BYTES", default=20 * 1024**3)
DERMCURATE_ZIP_MAX_RATIO = env.int("DERMCURATE_ZIP_MAX_RATIO", default=100)

ML_BASE_WEIGHTS = env("ML_BASE_WEIGHTS", default="imagenet")
ML_TRAINING_TIME_LIMIT = env.int("ML_TRAINING_TIME_LIMIT", default=48 * 3600)
ML_WORK_DIR = Path(env("ML_WORK_DIR", default=str(VAR_DIR / "ml-work")))
# Do the trainers have a GPU? auto: probe this machine's NVIDIA driver; yes / no where trainers run elsewhere.
ML_TRAINING_GPU = env("ML_TRAINING_GPU", default="auto")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
