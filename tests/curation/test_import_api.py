"""The upload page and POST /api/v1/imports/ take the same mapping and metadata files as the command line."""

import io

import pytest

from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, ImportBatch
from curation.services.imports import import_batch_execute
from tests.samples import lesion_jpeg, write_zip

pytestmark = pytest.mark.django_db


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def atlas_zip(tmp_path):
    files = {f"atlas/Acne Photos/acne{n}.jpg": lesion_jpeg(seed=n) for n in range(2)}
    files |= {f"atlas/{KAGGLE_FOLDERS[2]}/ISIC_{n}.jpg": lesion_jpeg(2, seed=10 + n) for n in range(2)}
    files["atlas/notes.txt"] = b"collected 2026"
    return write_zip(tmp_path / "atlas.zip", files).read_bytes()


def test_api_upload_with_a_mapping_file_and_metadata_is_planned_then_imported(api, curator, atlas_zip):
    response = api(curator).post(
        "/api/v1/imports/",
        {
            "file": named(atlas_zip, "atlas.zip"),
            "source": "atlas",
            "map_file": named(b"folder,code\nAcne Photos,skip\n", "map.csv"),
            "metadata": named(b"image_id,age,modality\nISIC_0,61,dermoscopic\nISIC_9,3,clinical\n", "meta.csv"),
        },
        format="multipart",
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["unmapped"] == "fail"
    assert body["report"]["files"] == 2 and body["report"]["not_imported_by_mapping"] == 2
    assert body["report"]["metadata"]["unmatched_rows"] == ["isic_9"]
    summary = import_batch_execute(batch_id=body["id"])  # what the worker runs

    assert summary.imported == 2 and summary.skipped == [
        {"path": "atlas/notes.txt", "reason": "not an image: a text file"}
    ]
    detail = api(curator).get(f"/api/v1/imports/{body['id']}/").json()
    assert detail["status"] == "succeeded" and detail["imported"] == 2
    image = Image.objects.get(provenance__source_path__endswith="ISIC_0.jpg")
    assert image.metadata == {"image_id": "ISIC_0", "age": 61, "modality": "dermoscopic"}


def test_api_refuses_unknown_folders_bad_files_and_long_source_names_with_400_and_no_batch(api, curator, atlas_zip):
    client = api(curator)

    unmapped = client.post("/api/v1/imports/", {"file": named(atlas_zip, "a.zip"), "source": "s"}, format="multipart")
    bad_code = client.post(
        "/api/v1/imports/",
        {
            "file": named(atlas_zip, "a.zip"),
            "source": "s",
            "map_file": named(b"folder,code\nAcne Photos,acne\n", "m.csv"),
        },
        format="multipart",
    )
    duplicated = client.post(
        "/api/v1/imports/",
        {
            "file": named(atlas_zip, "a.zip"),
            "source": "s",
            "unmapped": "skip",
            "metadata": named(b"image_id,age\nISIC_0,1\nISIC_0,2\n", "m.csv"),
        },
        format="multipart",
    )
    long_name = client.post(
        "/api/v1/imports/", {"file": named(atlas_zip, "a.zip"), "source": "x" * 101}, format="multipart"
    )

    assert unmapped.status_code == 400 and "1 folder match no class: Acne Photos" in str(unmapped.json())
    assert bad_code.status_code == 400 and "unknown class code 'acne'" in str(bad_code.json())
    assert duplicated.status_code == 400 and "more than once: ISIC_0" in str(duplicated.json())
    assert long_name.status_code == 400 and "source" in long_name.json()
    assert ImportBatch.objects.count() == 0


def test_upload_page_takes_the_same_files_and_explains_what_is_wrong(client, curator, atlas_zip):
    client.force_login(curator)

    refused = client.post("/curation/imports/new/", {"zip": named(atlas_zip, "a.zip"), "source": "atlas"})
    long_name = client.post("/curation/imports/new/", {"zip": named(atlas_zip, "a.zip"), "source": "y" * 101})
    accepted = client.post(
        "/curation/imports/new/",
        {
            "zip": named(atlas_zip, "a.zip"),
            "source": "atlas",
            "map_file": named(b"folder,code\nAcne Photos,1\n", "map.csv"),
            "metadata": named(b"filename,sex\nacne0.jpg,f\n", "meta.csv"),
        },
    )

    assert refused.status_code == 400 and "1 folder match no class: Acne Photos" in refused.content.decode()
    assert long_name.status_code == 400
    assert "The source name can be at most 100 characters (it has 101)." in long_name.content.decode()
    batch = ImportBatch.objects.get()
    assert accepted.status_code == 302 and accepted["Location"] == f"/curation/imports/{batch.pk}/"
    assert batch.class_map == {"Acne Photos": "eczema"} and batch.metadata_file
    import_batch_execute(batch_id=batch.pk)
    assert Image.objects.get(provenance__source_path__endswith="acne0.jpg").metadata["sex"] == "female"
    page = client.get(f"/curation/imports/{batch.pk}/").content.decode()
    assert "Metadata" in page and "notes.txt" in page
