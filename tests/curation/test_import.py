import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from core.services.jobs import jobs_fail_stale
from curation.demo_images import KAGGLE_FOLDERS, write_demo_dataset
from curation.models import Image, ImageSource, ImportBatch, ImportChunk, RejectedFile
from curation.services import storage
from curation.services.imports import import_images
from tests.conftest import REPO_ROOT, subprocess_env
from tests.samples import (
    REJECTED_REASONS,
    bad_and_good_inputs,
    lesion_jpeg,
    write_files,
    write_zip,
)


def stored_files() -> set[str]:
    return {name for _, name in storage.content_file_names()}


def expected_files() -> set[str]:
    names = set()
    for image in Image.objects.all():
        names |= {image.original.name, image.sanitized.name, image.thumbnail.name}
    return names


def run_import(path: Path, **options) -> dict:
    out = io.StringIO()
    call_command("import_images", str(path), "--json", *options.pop("args", []), stdout=out, **options)
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db
def test_kaggle_layout_at_any_depth_is_imported_with_source_labels_and_provenance(tmp_path):
    write_demo_dataset(tmp_path / "downloads" / "IMG_CLASSES", per_class=2, size=(120, 90), classes=[0, 1, 10])

    summary = run_import(tmp_path / "downloads", args=["--source", "kaggle"])

    assert summary["imported"] == 6
    assert summary["rejected"] == []
    assert set(summary) >= {"imported", "already_present", "duplicates_exact", "rejected", "seconds"}
    codes = sorted(Image.objects.values_list("source_label__code", flat=True))
    assert codes == ["eczema", "eczema", "normal_skin", "normal_skin", "viral_infections", "viral_infections"]
    provenance = ImageSource.objects.select_related("source").first()
    assert provenance.source.name == "kaggle"
    assert provenance.source_path.startswith("IMG_CLASSES/")
    assert all(image.status == Image.Status.PENDING for image in Image.objects.all())


@pytest.mark.django_db
def test_each_bad_input_is_rejected_with_a_clear_reason_and_the_rest_is_imported(tmp_path):
    write_files(tmp_path / "batch", bad_and_good_inputs())

    summary = run_import(tmp_path / "batch", args=["--source", "clinic"])

    rejected = {Path(row["path"]).name: row["reason"] for row in summary["rejected"]}
    assert set(rejected) == set(REJECTED_REASONS)
    for name, words in REJECTED_REASONS.items():
        assert words in rejected[name], (name, rejected[name])
    assert "3600.0 MP" in rejected["huge.png"]
    assert summary["imported"] == 6  # cmyk, rgba, rotated_gps, deep16, gray, UPPER.JPG
    batch = ImportBatch.objects.get()
    assert sorted(RejectedFile.objects.values_list("path", flat=True)) == sorted(
        f"{KAGGLE_FOLDERS[1]}/{name}" for name in REJECTED_REASONS
    )
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert batch.rejected_count == 4
    # Nothing half-written: only imported images have rows and files.
    assert stored_files() == expected_files()
    assert len(expected_files()) == 18


@pytest.mark.django_db
def test_served_derivatives_are_upright_rgb_and_carry_no_exif_or_gps(tmp_path, client, reviewer):
    write_files(tmp_path / "batch", bad_and_good_inputs())
    run_import(tmp_path / "batch", args=["--source", "clinic"])
    rotated = Image.objects.get(provenance__source_path__endswith="rotated_gps.jpg")
    client.force_login(reviewer)

    for kind in ("image", "thumbnail"):
        response = client.get(f"/files/images/{rotated.pk}/{kind}.jpg")
        served = PILImage.open(io.BytesIO(b"".join(response.streaming_content)))

        assert served.mode == "RGB"
        assert served.height > served.width, "orientation 6 turns the 160×80 landscape upright"
        assert not served.getexif(), "no EXIF at all, so no GPS"
        assert "exif" not in served.info and "icc_profile" not in served.info
        top = served.getpixel((served.width // 2, 2))
        assert top[0] > 200 and top[2] < 60, "orientation 6: the red left half ends up on top"
    assert (rotated.width, rotated.height) == (80, 160)
    # The original is kept untouched, with its metadata, and never served.
    with rotated.original.open("rb") as original:
        assert PILImage.open(original).getexif().get_ifd(0x8825)


@pytest.mark.django_db
def test_colour_modes_become_rgb_with_transparency_on_white(tmp_path):
    write_files(tmp_path / "batch", bad_and_good_inputs())
    run_import(tmp_path / "batch", args=["--source", "clinic"])

    for name in ("cmyk.jpg", "rgba.png", "deep16.png", "gray.jpg", "UPPER.JPG"):
        image = Image.objects.get(provenance__source_path__endswith=name)
        with image.sanitized.open("rb") as handle:
            served = PILImage.open(handle)
            served.load()
        assert served.mode == "RGB", name
        if name == "rgba.png":
            assert min(served.getpixel((1, 1))) > 240, "transparent corner composited on white"
        if name == "deep16.png":
            left, right = served.getpixel((0, 10))[0], served.getpixel((served.width - 1, 10))[0]
            assert left < 30 and right > 225, "16-bit range scaled, not clipped"


@pytest.mark.django_db
def test_running_the_same_import_again_adds_nothing(tmp_path):
    write_demo_dataset(tmp_path / "set", per_class=3, size=(120, 90), classes=[1, 2])
    first = run_import(tmp_path / "set", args=["--source", "kaggle"])
    files_after_first = stored_files()

    second = run_import(tmp_path / "set", args=["--source", "kaggle"])

    assert first["imported"] == 6
    assert (second["imported"], second["already_present"]) == (0, 6)
    assert Image.objects.count() == 6
    assert ImageSource.objects.count() == 6
    assert stored_files() == files_after_first


@pytest.mark.django_db
def test_same_bytes_in_two_class_folders_is_one_image_with_two_provenance_rows_and_a_conflict(tmp_path):
    same = lesion_jpeg(seed=3)
    write_files(
        tmp_path / "set",
        {
            f"{KAGGLE_FOLDERS[1]}/a.jpg": same,
            f"{KAGGLE_FOLDERS[3]}/b.jpg": same,
            f"{KAGGLE_FOLDERS[1]}/c.jpg": lesion_jpeg(seed=4),
        },
    )

    summary = run_import(tmp_path / "set", args=["--source", "kaggle"])

    assert (summary["imported"], summary["duplicates_exact"]) == (2, 1)
    image = Image.objects.get(provenance__source_path__endswith="a.jpg")
    assert sorted(image.provenance.values_list("source_label__code", flat=True)) == ["atopic_dermatitis", "eczema"]
    assert image.conflicting_source_labels is True
    assert Image.objects.filter(conflicting_source_labels=True).count() == 1


@pytest.mark.django_db
def test_folder_names_match_case_insensitively_ignoring_number_count_and_accents(tmp_path):
    write_files(
        tmp_path / "set",
        {
            "ÄRZTE-Sammlung/9. TINEA RINGWORM candidiasis and other fungal infections - 1.7k/x.jpg": lesion_jpeg(
                seed=1
            ),
            "ÄRZTE-Sammlung/1. Eczéma 99/y.JPG": lesion_jpeg(seed=2),
            "ÄRZTE-Sammlung/Normal/z.jpeg": lesion_jpeg(seed=3),
        },
    )

    summary = run_import(tmp_path / "set", args=["--source", "ärzte"])

    assert summary["imported"] == 3
    assert sorted(Image.objects.values_list("source_label__code", flat=True)) == [
        "eczema",
        "fungal_infections",
        "normal_skin",
    ]
    assert ImageSource.objects.filter(source_path__startswith="ÄRZTE-Sammlung/").count() == 3


@pytest.mark.django_db
def test_an_unknown_class_folder_stops_the_import_before_anything_is_written(tmp_path):
    write_files(
        tmp_path / "set",
        {
            f"{KAGGLE_FOLDERS[1]}/a.jpg": lesion_jpeg(seed=1),
            "Rosacea 120/b.jpg": lesion_jpeg(seed=2),
        },
    )

    with pytest.raises(CommandError) as error:
        run_import(tmp_path / "set", args=["--source", "kaggle"])

    message = str(error.value)
    assert "Rosacea 120" in message and "match no class" in message
    assert "normal_skin" in message and "viral_infections" in message, "lists the known classes"
    assert '--map "FOLDER=code"' in message
    assert Image.objects.count() == 0
    assert stored_files() == set()


@pytest.mark.django_db
def test_map_option_maps_an_unknown_folder_and_refuses_an_unknown_code(tmp_path):
    write_files(tmp_path / "set", {"Rosacea 120/b.jpg": lesion_jpeg(seed=2)})

    with pytest.raises(CommandError, match="unknown class code 'rosacea'"):
        run_import(tmp_path / "set", args=["--source", "k", "--map", "Rosacea 120=rosacea"])
    summary = run_import(tmp_path / "set", args=["--source", "k", "--map", "Rosacea 120=eczema"])

    assert summary["imported"] == 1
    assert Image.objects.get().source_label.code == "eczema"


@pytest.mark.django_db
def test_a_zip_is_imported_like_a_folder(tmp_path):
    files = {f"IMG_CLASSES/{KAGGLE_FOLDERS[5]}/n{i}.jpg": lesion_jpeg(5, seed=i) for i in range(3)}

    summary = run_import(write_zip(tmp_path / "nevi.zip", files), args=["--source", "zipped"])

    assert summary["imported"] == 3
    assert set(Image.objects.values_list("source_label__code", flat=True)) == {"melanocytic_nevi"}


@pytest.mark.django_db
@pytest.mark.parametrize("bad_name", ["../evil.jpg", "ok/../../evil.jpg", "/etc/evil.jpg"])
def test_a_zip_with_entries_outside_the_archive_is_refused(tmp_path, bad_name):
    archive = write_zip(
        tmp_path / "bad.zip", {f"{KAGGLE_FOLDERS[1]}/a.jpg": lesion_jpeg(), bad_name: lesion_jpeg(seed=9)}
    )

    with pytest.raises(CommandError, match="points outside the archive"):
        run_import(archive, args=["--source", "zipped"])

    assert Image.objects.count() == 0
    assert not (tmp_path / "evil.jpg").exists()


@pytest.mark.django_db
def test_a_zip_with_a_link_or_a_bomb_is_refused(tmp_path, settings):
    link_zip = tmp_path / "link.zip"
    with zipfile.ZipFile(link_zip, "w") as archive:
        entry = zipfile.ZipInfo(f"{KAGGLE_FOLDERS[1]}/link.jpg")
        entry.external_attr = 0o120777 << 16
        archive.writestr(entry, "/etc/passwd")
    bomb_zip = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{KAGGLE_FOLDERS[1]}/bomb.jpg", b"\0" * 50_000_000)

    with pytest.raises(CommandError, match="is a link"):
        run_import(link_zip, args=["--source", "z"])
    with pytest.raises(CommandError, match="zip bomb"):
        run_import(bomb_zip, args=["--source", "z"])
    assert Image.objects.count() == 0


@pytest.mark.django_db
def test_a_path_that_is_neither_folder_nor_zip_is_refused(tmp_path):
    (tmp_path / "photo.txt").write_text("hello")

    with pytest.raises(CommandError, match="neither a folder nor a zip"):
        run_import(tmp_path / "photo.txt", args=["--source", "x"])
    with pytest.raises(CommandError, match="does not exist"):
        run_import(tmp_path / "missing", args=["--source", "x"])


@pytest.mark.django_db
def test_a_failure_while_writing_rows_leaves_no_orphan_files(tmp_path, monkeypatch):
    write_demo_dataset(tmp_path / "set", per_class=2, size=(120, 90), classes=[1])
    from curation.services import imports

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports.RejectedFile.objects, "bulk_create", fail)

    with pytest.raises(RuntimeError, match="database went away"):
        import_images(path=tmp_path / "set", source_name="kaggle", workers=1)

    assert Image.objects.count() == 0
    assert stored_files() == set()
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_import_leaves_nothing_half_written_and_can_be_rerun_to_completion(tmp_path, settings):
    write_demo_dataset(tmp_path / "set", per_class=40, size=(300, 225), classes=[1, 2, 5])
    command = [sys.executable, "manage.py", "import_images", str(tmp_path / "set"), "--source", "k", "--workers", "1"]
    env = subprocess_env(DERMCURATE_IMPORT_CHUNK_SIZE="10")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while Image.objects.count() == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its decoding processes
    process.wait()
    assert 0 < Image.objects.count() < 120, "killed in the middle"
    assert stored_files() >= expected_files(), "every row has its files"
    settings.DERMCURATE_JOB_STALE_SECONDS = 0
    batch = ImportBatch.objects.get()
    chunk = ImportChunk.objects.get(batch=batch, status="running")
    assert sorted(job.job_label for job in jobs_fail_stale()) == [f"import:{batch.pk}", f"import_chunk:{chunk.pk}"]

    rerun = subprocess.run([*command, "--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)

    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["imported"] + summary["already_present"] == 120
    assert Image.objects.count() == 120
    assert stored_files() == expected_files(), "no orphan file, no missing file"
    assert ImportBatch.objects.filter(status=ImportBatch.Status.FAILED).count() == 1, "the killed batch is failed"
