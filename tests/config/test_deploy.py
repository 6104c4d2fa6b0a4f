"""Docker cannot run here: check what can be checked of the deployment files."""

import importlib
import re
import shlex

import pytest
import yaml
from django.core.management import get_commands

from config.celery_app import app as celery_app
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    command = service["command"]
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if words[:2] == ["sh", "-c"]:
        words = shlex.split(words[2].replace("&&", " && "))
    return words


APP_SERVICES = ("web", "worker", "beat", "trainer", "inference", "scorer")


def test_compose_has_the_services_with_health_checks_and_named_volumes(compose):
    services = compose["services"]

    assert set(services) == {"postgres", "redis", "minio", "minio-init", *APP_SERVICES}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].startswith("minio/minio:RELEASE.")
    for name, service in services.items():
        assert "healthcheck" in service, name
        if service["healthcheck"].get("disable"):
            assert service.get("x-no-healthcheck"), f"{name}: a service without a health check says why"
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared


def test_web_workers_beat_and_trainer_share_minio_s_bucket_once_it_exists(compose):
    services = compose["services"]
    init_script = " ".join(services["minio-init"]["command"])

    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb --ignore-existing" in init_script and "mc anonymous set none" in init_script
    for name in APP_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["DERMCURATE_STORAGE_BACKEND"] == "s3", name
        assert env["AWS_S3_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["AWS_S3_ADDRESSING_STYLE"] == "path", name
        assert {"AWS_STORAGE_BUCKET_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env), name
        assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully", name
        assert not any(volume.startswith("media:") for volume in service.get("volumes", [])), "files are in the bucket"


def test_trainer_takes_the_training_queue_one_at_a_time_on_a_gpu(compose):
    trainer = compose["services"]["trainer"]
    words = command_words(trainer)

    assert words[words.index("-Q") + 1] == "training"
    assert words[words.index("--concurrency") + 1] == "1"
    assert words[words.index("--prefetch-multiplier") + 1] == "1"
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert trainer["build"]["args"]["TF_EXTRA"] == "and-cuda"
    mounted = {volume.split(":")[0] for volume in trainer["volumes"]}
    assert "models" in mounted, "its work folder (and cache of the bucket's images) outlives the container"


def test_inference_and_scoring_have_workers_of_their_own_fed_one_task_at_a_time(compose):
    """Predictions must not wait behind a 48-hour training run or a bulk scoring job: each queue has its workers,
    and every queue a task is routed to is consumed by some service."""
    from django.conf import settings

    consumed = {}
    for name, service in compose["services"].items():
        words = command_words(service) if "command" in service else []
        if "celery" in words and "worker" in words:
            for queue in words[words.index("-Q") + 1].split(","):
                consumed[queue] = name
            if name in ("inference", "scorer", "trainer"):
                assert words[words.index("--prefetch-multiplier") + 1] == "1", name
    assert consumed["inference"] == "inference" and consumed["scoring"] == "scorer"
    assert consumed["training"] == "trainer" and consumed["default"] == "worker"
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= set(consumed), routed - set(consumed)
    assert "models" in {volume.split(":")[0] for volume in compose["services"]["inference"]["volumes"]}


def test_every_command_the_deployment_runs_exists_in_the_project(compose):
    queues = {queue.name for queue in celery_app.conf.task_queues}
    management_commands = get_commands()
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    commands = [command_words(service) for service in compose["services"].values() if "command" in service]
    commands.append(shlex.split(re.search(r"CMD \[(.*)\]", dockerfile).group(1).replace(",", " ")))

    for words in commands:
        if "manage.py" in words:
            assert words[words.index("manage.py") + 1] in management_commands, words
        if "gunicorn" in words:
            module, _, attribute = words[words.index("gunicorn") + 1].partition(":")
            assert hasattr(importlib.import_module(module), attribute or "application"), words
        if "celery" in words:
            assert words[words.index("-A") + 1] == "config"
            assert "worker" in words or "beat" in words, words
            if "worker" in words:
                assert words[words.index("-Q") + 1] in queues, words
    assert "collectstatic" in management_commands
    assert "migrate" in management_commands


def test_web_migrates_before_serving(compose):
    words = command_words(compose["services"]["web"])

    assert words.index("migrate") < words.index("gunicorn")
