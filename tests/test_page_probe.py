"""Every curator page (curation, ml) and the account pages, probed with junk: non-numeric and huge ids,
wrong types, missing and repeated fields. Nothing answers a server error."""

import pytest
from django.urls import URLPattern, get_resolver

from curation.models import DuplicateGroup, ImportBatch, LabelClass, Snapshot
from curation.services.snapshots import snapshot_create
from ml.models import ModelVersion, TrainingRun
from tests.factories import SourceFactory
from tests.ml.test_models_api import model_version

pytestmark = pytest.mark.django_db

JUNK_QUERIES = [
    "",
    "?page=abc&show=x&status=%00&label=' OR 1=1&source=&conflicts=2",
    "?a=x&b=1",
    "?a=99999999999999999999999&b=-1",
    "?page=99999999999999999999&page=2&min_overlap=abc",
]
JUNK_FORMS = [
    {},
    {"image": "abc", "keep": "abc", "snapshot": "abc", "config": "[1]", "force": "maybe"},
    {"image": "9" * 30, "keep": "-1", "snapshot": "9" * 30, "config": "{", "next": "https://evil.example/"},
    {"name": "n" * 300, "seed": "1" * 14, "cap_per_class": "1" * 14, "ratio_train": "nan", "classes": ["x", "y"]},
    {"name": "ok", "seed": "1", "ratio_train": "0.8", "ratio_val": "0.1", "ratio_test": "0.1", "preset": "tiny"},
]
# Owned by the import page's own form (issue 10), probed there.
SKIPPED = {"curation:import-new"}


def page_patterns() -> list[tuple[str, str]]:
    """(name, route) of every page of the curation and ml apps, plus the account pages."""
    found = []

    def walk(patterns, namespace="", prefix=""):
        for entry in patterns:
            if isinstance(entry, URLPattern):
                name = f"{namespace}{entry.name}" if entry.name else None
                if name and (namespace in ("curation:", "ml:") or name in ("home", "login", "logout")):
                    found.append((name, prefix + str(entry.pattern)))
            else:
                inner = f"{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, inner, prefix + str(entry.pattern))

    walk(get_resolver().url_patterns)
    return [(name, route) for name, route in found if name not in SKIPPED]


@pytest.fixture
def objects(image_factory):
    """One of everything a page can name, all numbered 1 or more."""
    for code in ("eczema", "melanoma"):
        image_factory.create_batch(5, status="labeled", label=LabelClass.objects.get(code=code))
    snapshot = snapshot_create(name="probe", ratios=[0.6, 0.2, 0.2])
    version = model_version(snapshot, 0.5)
    group = DuplicateGroup.objects.create()
    image_factory.create_batch(2, duplicate_group=group)
    batch = ImportBatch.objects.create(source=SourceFactory(), status="failed", path="/nonexistent")
    return {
        "snapshot_id": snapshot.pk,
        "other_id": snapshot.pk,
        "model_id": version.pk,
        "run_id": TrainingRun.objects.get().pk,
        "group_id": group.pk,
        "batch_id": batch.pk,
        "image_id": group.images.first().pk,
        "kind": "image",
    }


def fill(route: str, values: dict) -> str:
    path = route
    for key, value in values.items():
        path = path.replace(f"<int:{key}>", str(value)).replace(f"<str:{key}>", str(value))
    return "/" + path


def test_the_probe_covers_the_pages():
    names = {name for name, _ in page_patterns()}

    assert {"curation:images", "curation:snapshots", "curation:duplicate-keep-one", "ml:runs", "ml:models-compare"} <= (
        names
    )


@pytest.mark.parametrize("ids", ["real", "missing", "huge"])
def test_no_page_answers_junk_with_a_server_error(client, curator, objects, ids):
    client.force_login(curator)
    values = {
        "real": objects,
        "missing": {key: 424242 if key != "kind" else "thumbnail" for key in objects},
        "huge": {key: 2**63 + 7 if key != "kind" else "x" * 300 for key in objects},
    }[ids]
    failures = []
    for name, route in page_patterns():
        path = fill(route, values)
        if name == "logout":
            continue  # signs the client out; probed last
        for query in JUNK_QUERIES:
            response = client.get(path + query)
            if response.status_code >= 500:
                failures.append(f"GET {path}{query} → {response.status_code}")
        for form in JUNK_FORMS:
            response = client.post(path, form)
            if response.status_code >= 500:
                failures.append(f"POST {path} {form} → {response.status_code}")
            if response.status_code in (301, 302) and "evil.example" in response["Location"]:
                failures.append(f"POST {path} {form} → sent off site to {response['Location']}")
    assert client.post("/accounts/logout/", {"next": "https://evil.example/"}).status_code == 302

    assert failures == []
    assert Snapshot.objects.filter(name="n" * 300).count() == 0
    assert ModelVersion.objects.filter(is_production=True).count() <= 1
