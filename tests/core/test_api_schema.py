"""The OpenAPI schema tells the truth: schemathesis (every check, derandomized generation, a bounded
number of examples per operation) sends generated requests to a live server with a curator's token
and finds no server error and no answer the schema does not describe."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token

from curation.models import DuplicateGroup, Image, ImportBatch
from ml.models import ScoringJob, TrainingRun
from tests.ml.test_models_api import model_version
from tests.samples import labeled_demo_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 8
# A ceiling for a stuck run, far above the minute or two a run takes on two cores.
TIME_LIMIT_SECONDS = 600


def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_list_endpoints_are_documented_as_pages():
    schema = api_schema()
    lists = [
        "/api/v1/classes/",
        "/api/v1/images/",
        "/api/v1/imports/",
        "/api/v1/snapshots/",
        "/api/v1/training-runs/",
        "/api/v1/models/",
        "/api/v1/reviews/",
        "/api/v1/scoring-jobs/",
        "/api/v1/label-issues/",
    ]
    for path in lists:
        operation = schema["paths"][path]["get"]
        reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
        assert set(page["properties"]) == {"count", "next", "previous", "results"}, path
        assert page["properties"]["results"]["type"] == "array", path
        assert {"page", "page_size"} <= {parameter["name"] for parameter in operation["parameters"]}, path


def test_every_operation_documents_its_error_answers():
    schema = api_schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403", "429", "503"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if method == "post":
                assert "400" in codes, (method, path)
            if "requestBody" in operation:
                assert "413" in codes, (method, path)
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_streamed_exports_are_documented_with_their_content_types():
    paths = api_schema()["paths"]

    export = paths["/api/v1/snapshots/{snapshot_id}/export/"]["get"]["responses"]["200"]["content"]
    archive = paths["/api/v1/snapshots/{snapshot_id}/archive/"]["get"]["responses"]["200"]["content"]

    assert set(export) == {"text/csv", "application/jsonl"}
    assert set(archive) == {"application/zip"}


CONFIG = Path(__file__).with_name("schemathesis.toml")


def run_schemathesis(
    *, schema_file: Path, base_url: str, token: str, workdir: Path, only: str = ""
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        str(schema_file),
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        # Hypothesis derandomized: the same requests in every run (the seed is not used then).
        "--generation-deterministic",
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "60",
        "--header",
        f"Authorization: Token {token}",
        *(["--include-path-regex", only] if only else []),
    ]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIME_LIMIT_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, output, "")


@pytest.fixture
def job_queues_purged():
    """Imports, training runs and scoring jobs the fuzzer starts are queued rows with a message in the broker and no
    worker; the messages go afterwards, so that no later test's worker picks one up."""
    yield
    from celery import current_app

    with current_app.connection_for_write() as connection:
        for queue in ("default", "training", "scoring", "inference"):
            connection.default_channel.queue_purge(queue)


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    live_server, curator, tmp_path, job_queues_purged, settings
):
    # No inference worker runs here: once the fuzzer has promoted a model, a prediction waits this long for one.
    settings.ML_PREDICT_TIMEOUT_SECONDS = 1
    # Real objects behind the ids, so that generated requests reach more than 404s.
    snapshot = labeled_demo_snapshot(
        tmp_path / "set", name="fuzzed", per_class=4, size=(64, 64), classes=[1, 2], ratios=[0.5, 0.25, 0.25]
    )
    version = model_version(snapshot, 0.5)
    TrainingRun.objects.create(snapshot=snapshot, preset="tiny", config={}, config_hash="queued", status="queued")
    ScoringJob.objects.create(model_version=version, snapshot=snapshot, status="failed", error="for the fuzzer")
    group = DuplicateGroup.objects.create()
    Image.objects.filter(pk__in=list(Image.objects.values_list("pk", flat=True)[:2])).update(duplicate_group=group)
    assert ImportBatch.objects.exists() and version.pk
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(api_schema()))
    workdir = tmp_path / "schemathesis"
    workdir.mkdir()

    result = run_schemathesis(
        schema_file=schema_file,
        base_url=live_server.url,
        token=Token.objects.create(user=curator).key,
        workdir=workdir,
    )

    assert result.returncode == 0, result.stdout[-30000:]
    operations = sum(len(methods) for methods in json.loads(schema_file.read_text())["paths"].values())
    assert f"Tested: {operations}" in result.stdout, result.stdout[-5000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", result.stdout).groups())
    assert generated == passed > 20 * operations, result.stdout[-5000:]


READER_PATHS = r"^/api/v1/(reviews|review-queue|reference-images|adjudications)/"


def test_schemathesis_finds_no_server_error_on_the_readers_operations(live_server, tmp_path):
    """The review operations as an adjudicator (who also reads) calls them: images in the queue, in
    dispute and labeled, so that generated requests meet leases, 409s and the undo windows."""
    from labeling.services.queue import review_queue_next
    from tests.conftest import make_user
    from tests.factories import ImageFactory
    from tests.reviewing import decide

    labeled_demo_snapshot(
        tmp_path / "set", name="fuzzed", per_class=4, size=(48, 36), classes=[1, 2], ratios=[0.5, 0.25, 0.25]
    )
    senior = make_user("fuzzing-senior", "adjudicator")
    first, second = make_user("fuzz-a", "reviewer"), make_user("fuzz-b", "reviewer")
    disputed, *_ = ImageFactory.create_batch(5)
    decide(reader=first, image_id=disputed.pk, label_code="eczema")
    decide(reader=second, image_id=disputed.pk, label_code="melanoma")
    assert Image.objects.get(pk=disputed.pk).status == "disputed"
    review_queue_next(reader=senior, count=3)
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(api_schema()))
    workdir = tmp_path / "schemathesis"
    workdir.mkdir()

    result = run_schemathesis(
        schema_file=schema_file,
        base_url=live_server.url,
        token=Token.objects.create(user=senior).key,
        workdir=workdir,
        only=READER_PATHS,
    )

    assert result.returncode == 0, result.stdout[-30000:]
    operations = sum(
        len(methods)
        for path, methods in json.loads(schema_file.read_text())["paths"].items()
        if re.match(READER_PATHS, path)
    )
    assert operations >= 10 and f"Tested: {operations}" in result.stdout, result.stdout[-5000:]
