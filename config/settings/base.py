"""Settings shared by every environment; values come from the environment.

With no variables set the product runs on embedded defaults: SQLite and media
under `var/`, and Celery on kombu's filesystem broker under `var/`, so a real
worker process runs without PostgreSQL or Redis.
"""

from datetime import timedelta
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
    "SERVE_PERMISSIONS": ["accounts.permissions.HasAnyRole"],
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
CELERY_TASK_ROUTES = {
    "ml.tasks.training_run_execute_task": {"queue": "training"},
    "ml.tasks.scoring_job_execute_task": {"queue": "scoring"},
    "ml.tasks.predict_task": {"queue": "inference"},
}
# Celery beat (`make demo` and the compose file run it): the worker side fails jobs whose
# heartbeat went stale and sends jobs the broker missed.
DERMCURATE_JOB_SWEEP_SECONDS = env.float("DERMCURATE_JOB_SWEEP_SECONDS", default=30)
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {"task": "core.tasks.jobs_sweep_task", "schedule": DERMCURATE_JOB_SWEEP_SECONDS},
}
# New imports are scored by the production model within this many seconds (0: only on promotion and on demand).
ML_SCORING_CATCH_UP_SECONDS = env.float("ML_SCORING_CATCH_UP_SECONDS", default=60)
if ML_SCORING_CATCH_UP_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["scoring-catch-up"] = {
        "task": "ml.tasks.scoring_catch_up_task",
        "schedule": ML_SCORING_CATCH_UP_SECONDS,
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
if DERMCURATE_QUEUE_ORDER not in ("random", "oldest", "uncertainty", "disagreement"):
    raise ImproperlyConfigured(
        f"DERMCURATE_QUEUE_ORDER={DERMCURATE_QUEUE_ORDER!r} is not known: use random, oldest, uncertainty or "
        "disagreement."
    )
# The disagreement order and the quality dashboard: the production model contradicts an image's label when it
# names another class with at least this calibrated probability.
DERMCURATE_DISAGREEMENT_MIN_PROBABILITY = env.float("DERMCURATE_DISAGREEMENT_MIN_PROBABILITY", default=0.8)
# Model orders serve no two images of one duplicate group, lesion or patient within this many of a reader's images.
DERMCURATE_QUEUE_DIVERSITY_WINDOW = env.int("DERMCURATE_QUEUE_DIVERSITY_WINDOW", default=10)
DERMCURATE_REVEAL_SOURCE_LABEL = env.bool("DERMCURATE_REVEAL_SOURCE_LABEL", default=False)
# After a reader's own decision, the review screen shows the production model's top 3 for a moment.
DERMCURATE_REVEAL_MODEL_SUGGESTION = env.bool("DERMCURATE_REVEAL_MODEL_SUGGESTION", default=False)
DERMCURATE_REVEAL_MODEL_SUGGESTION_SECONDS = env.float("DERMCURATE_REVEAL_MODEL_SUGGESTION_SECONDS", default=3)
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
# Promotion is refused (unless forced, with a reason) below this macro F1 on the model's test split, when a class
# has fewer test images than this, or when the model is worse than production on the test images both were scored on.
ML_PROMOTION_MIN_MACRO_F1 = env.float("ML_PROMOTION_MIN_MACRO_F1", default=0.5)
ML_PROMOTION_MIN_TEST_PER_CLASS = env.int("ML_PROMOTION_MIN_TEST_PER_CLASS", default=5)
# Predictions: abstain (refer to a dermatologist) when the top calibrated probability is below this.
ML_ABSTAIN_BELOW = env.float("ML_ABSTAIN_BELOW", default=0.5)
ML_KEEP_PREDICTION_IMAGES = env.bool("ML_KEEP_PREDICTION_IMAGES", default=False)
ML_PREDICT_TIMEOUT_SECONDS = env.float("ML_PREDICT_TIMEOUT_SECONDS", default=30)
ML_PREDICT_MAX_BYTES = env.int("ML_PREDICT_MAX_BYTES", default=20 * 1024 * 1024)
# Images a scoring job reads, predicts and stores together (and at most what a killed job redoes).
ML_SCORING_CHUNK_SIZE = env.int("ML_SCORING_CHUNK_SIZE", default=64)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Operating under load, faults and attackers (issue 14) ----------------------------------------
# Every limit below is in README "Operating it".
INSTALLED_APPS += ["axes"]
MIDDLEWARE.insert(0, "core.middleware.RequestSizeLimitMiddleware")
MIDDLEWARE.insert(2, "core.middleware.PermissionsPolicyMiddleware")  # after SecurityMiddleware
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes asks
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Brute-force protection (django-axes): after LIMIT failed logins for one username, or from one
# address, with no more than LOCKOUT_MINUTES between them, that username or address is locked out
# for LOCKOUT_MINUTES after its last failure. Curators unlock with `unlock_user` or in the admin.
DERMCURATE_LOGIN_FAILURE_LIMIT = env.int("DERMCURATE_LOGIN_FAILURE_LIMIT", default=5)
DERMCURATE_LOGIN_LOCKOUT_MINUTES = env.int("DERMCURATE_LOGIN_LOCKOUT_MINUTES", default=15)
# Proxies in front of the web server that append to X-Forwarded-For (0: the client's own address).
DERMCURATE_TRUSTED_PROXY_COUNT = env.int("DERMCURATE_TRUSTED_PROXY_COUNT", default=0)
AXES_FAILURE_LIMIT = DERMCURATE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=DERMCURATE_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
# Attempts made while locked out are refused without moving the end of the lockout.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
AXES_ENABLE_ADMIN = False  # accounts.admin shows lockouts to curators, with an unlock action
AXES_VERBOSE = False

# API throttling (DRF), per signed-in user; rates are "N/second|minute|hour|day", or empty for none.
# The token endpoint is guarded by the lockout above instead.
DERMCURATE_API_RATES = {
    "user": env("DERMCURATE_API_RATE_USER", default="600/minute") or None,
    "anon": env("DERMCURATE_API_RATE_ANON", default="60/minute") or None,
}
REST_FRAMEWORK["NUM_PROXIES"] = DERMCURATE_TRUSTED_PROXY_COUNT
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["core.throttling.UserRateThrottle", "core.throttling.AnonRateThrottle"]
# Throttle counters live in this cache: shared by every web process when it is Redis
# (redis://…/1); the default keeps them per process. When it fails, requests go through unthrottled.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": env.cache_url("DERMCURATE_THROTTLE_CACHE_URL", default="locmemcache://throttle"),
}
if CACHES["throttle"]["BACKEND"].endswith("RedisCache"):
    CACHES["throttle"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 0.5, "socket_timeout": 0.5})

# Request sizes. A body larger than its limit is answered 413 from its Content-Length, before it is read.
# Uploads (multipart bodies to UPLOAD_PATHS: import zips, photos to predict) may be up to
# UPLOAD_MAX_BYTES and are streamed to a temporary file; every other body is held in memory and
# may be up to DATA_UPLOAD_MAX_MEMORY_SIZE.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_FILE_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
DERMCURATE_UPLOAD_MAX_BYTES = env.int("DERMCURATE_UPLOAD_MAX_BYTES", default=4 * 1024**3)
DERMCURATE_UPLOAD_PATHS = env.list(
    "DERMCURATE_UPLOAD_PATHS", default=["/api/v1/imports/", "/curation/imports/new/", "/api/v1/predict/"]
)
# JSON bodies (and JSON typed into forms) nested deeper than this are refused with a 400.
DERMCURATE_JSON_MAX_DEPTH = env.int("DERMCURATE_JSON_MAX_DEPTH", default=20)
# Slow bodies (gunicorn; core/slow_body.py): a body that sends nothing for BODY_IDLE_SECONDS, or takes
# longer than BODY_IDLE_SECONDS + its size at BODY_MIN_BYTES_PER_SECOND, is cut off with a 408
# (at the defaults a 4 GiB zip may take 18 h: at least 64 KiB/s).
DERMCURATE_BODY_IDLE_SECONDS = env.float("DERMCURATE_BODY_IDLE_SECONDS", default=20)
DERMCURATE_BODY_MIN_BYTES_PER_SECOND = env.int("DERMCURATE_BODY_MIN_BYTES_PER_SECOND", default=64 * 1024)

# Where `manage.py backup` / `restore` find pg_dump and pg_restore (empty: PATH, then the newest
# /usr/lib/postgresql/*/bin). They must be of the server's major version or newer.
DERMCURATE_PG_BIN_DIR = env("DERMCURATE_PG_BIN_DIR", default="")

# Security headers (the CSP is django-csp's, set with the review pages). Pages that need the
# camera opt in with core.middleware.permissions_policy(camera="self").
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
DERMCURATE_PERMISSIONS_POLICY = {
    "camera": "()",
    "microphone": "()",
    "geolocation": "()",
    "payment": "()",
    "usb": "()",
}

# Database connections: kept open between requests and checked before reuse, so a restarted
# PostgreSQL costs one failed request per connection, not a web restart (bench/RESULTS.md, load).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] != 0
# Answers while the database is down: 503 with Retry-After, never a traceback.
DERMCURATE_UNAVAILABLE_RETRY_AFTER_SECONDS = 30
