import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import REPO_ROOT

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']), "
    "'host': s.DATABASES['default'].get('HOST', ''), 'broker': s.CELERY_BROKER_URL, "
    "'broker_dir': s.CELERY_BROKER_TRANSPORT_OPTIONS.get('data_folder_in', ''), 'media': str(s.MEDIA_ROOT), "
    "'debug': s.DEBUG, 'secret_set': bool(s.SECRET_KEY)}))"
)
CONFIG_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
    "DJANGO_SECRET_KEY",
    "DERMCURATE_STORAGE_BACKEND",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "AWS_S3_REGION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_S3_ADDRESSING_STYLE",
)
PRINT_STORAGE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "from django.core.files.storage import default_storage as d; "
    "print(json.dumps({'backend': s.STORAGES['default']['BACKEND'], 'options': s.STORAGES['default'].get('OPTIONS'), "
    "'class': d.__class__.__name__}))"
)


def run_python(code: str, settings_module: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE=settings_module, **env_vars)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)


def test_no_environment_means_sqlite_and_filesystem_broker_under_var(tmp_path):
    result = run_python(PRINT_SETTINGS, "config.settings.development", DERMCURATE_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["name"] == str(tmp_path / "db.sqlite3")
    assert seen["broker"] == "filesystem://"
    assert seen["broker_dir"].startswith(str(tmp_path))
    assert seen["media"] == str(tmp_path / "media")
    assert seen["secret_set"], "development makes its own random key under var/"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0, "the key file is private"


def test_environment_switches_to_postgresql_and_redis(tmp_path):
    result = run_python(
        PRINT_SETTINGS,
        "config.settings.development",
        DATABASE_URL="postgres://u:p@db.example:5433/dermcurate",
        CELERY_BROKER_URL="redis://cache.example:6379/0",
        MEDIA_ROOT=str(tmp_path / "m"),
        DERMCURATE_VAR_DIR=str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["engine"] == "django.db.backends.postgresql"
    assert (seen["host"], seen["name"]) == ("db.example", "dermcurate")
    assert seen["broker"] == "redis://cache.example:6379/0"
    assert seen["media"] == str(tmp_path / "m")


def test_this_test_run_uses_the_real_services_it_was_given():
    if not os.environ.get("DATABASE_URL"):
        pytest.skip("run through `make test`, which starts PostgreSQL and Redis")
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_production_refuses_to_start_without_a_secret_key():
    result = run_python(PRINT_SETTINGS, "config.settings.production", DJANGO_ALLOWED_HOSTS="derm.example.org")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_check_deploy_is_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-key-for-this-test-only-1234567890",
        DJANGO_ALLOWED_HOSTS="derm.example.org",
        DERMCURATE_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_migrations_match_the_models():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_storage_is_the_filesystem_by_default(tmp_path):
    result = run_python(PRINT_STORAGE, "config.settings.development", DERMCURATE_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert (seen["backend"], seen["class"]) == ("django.core.files.storage.FileSystemStorage", "FileSystemStorage")


def test_s3_storage_is_configured_with_django_storages_names_and_stays_private(tmp_path):
    result = run_python(
        PRINT_STORAGE,
        "config.settings.development",
        DERMCURATE_VAR_DIR=str(tmp_path),
        DERMCURATE_STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="derm-media",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        AWS_S3_REGION_NAME="eu-central-1",
        AWS_ACCESS_KEY_ID="key-id",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_S3_ADDRESSING_STYLE="path",
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert (seen["backend"], seen["class"]) == ("storages.backends.s3.S3Storage", "S3Storage")
    assert seen["options"] == {
        "bucket_name": "derm-media",
        "endpoint_url": "http://minio:9000",
        "region_name": "eu-central-1",
        "access_key": "key-id",
        "secret_key": "secret",
        "addressing_style": "path",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
    }


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DERMCURATE_STORAGE_BACKEND": "storages.backends.s3.S3Storage"}, "use filesystem or s3"),
        ({"DERMCURATE_STORAGE_BACKEND": "s3"}, "needs AWS_STORAGE_BUCKET_NAME"),
    ],
)
def test_an_unknown_storage_or_an_s3_storage_without_a_bucket_is_refused(tmp_path, variables, message):
    result = run_python(PRINT_STORAGE, "config.settings.development", DERMCURATE_VAR_DIR=str(tmp_path), **variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
