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


def test_compose_has_the_services_with_health_checks_and_named_volumes(compose):
    services = compose["services"]

    assert set(services) == {"postgres", "redis", "web", "worker", "beat", "trainer"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name, service in services.items():
        assert "healthcheck" in service, name
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared


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
    assert {"media", "models"} <= mounted


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
