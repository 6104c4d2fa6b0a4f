"""Real collections: folder mapping at scale, metadata files, and every bad input of issue 10."""

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from core.models import AuditEvent
from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, ImportBatch, RejectedFile
from tests.samples import encode, lesion_jpeg, write_files, write_zip

pytestmark = pytest.mark.django_db

DERMNET_FOLDERS = [f"Diagnosis {number:03d} Photos" for number in range(25)]


def run(path: Path, *args: str) -> dict:
    out = io.StringIO()
    call_command("import_images", str(path), "--json", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def run_text(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_images", str(path), *args, stdout=out)
    return out.getvalue()


def dermnet_like(root: Path) -> Path:
    """25 diagnosis folders that match no class, two photos each, in train/ and test/, plus one known folder."""
    files = {}
    for number, folder in enumerate(DERMNET_FOLDERS):
        files[f"train/{folder}/a{number}.jpg"] = lesion_jpeg(number % 11, seed=number)
        files[f"test/{folder}/b{number}.jpg"] = lesion_jpeg(number % 11, seed=100 + number)
    files[f"train/{KAGGLE_FOLDERS[2]}/m.jpg"] = lesion_jpeg(2, seed=999)
    return write_files(root, files)


def test_dry_run_lists_every_folder_with_its_count_and_class_and_writes_nothing(tmp_path):
    root = dermnet_like(tmp_path / "dermnet")

    plan = run(root, "--dry-run")
    text = run_text(root, "--dry-run")

    folders = {row["folder"]: row for row in plan["folders"]}
    assert plan["dry_run"] is True and plan["files"] == 1, "only the mapped folder's photo would be imported"
    assert folders[KAGGLE_FOLDERS[2]]["code"] == "melanoma" and folders[KAGGLE_FOLDERS[2]]["files"] == 1
    assert all(folders[name]["code"] == "unmapped" and folders[name]["files"] == 2 for name in DERMNET_FOLDERS)
    assert len(plan["unmapped"]) == 25
    assert "Diagnosis 007 Photos" in text and "unmapped" in text and "Dry run: nothing was written." in text
    assert ImportBatch.objects.count() == 0 and Image.objects.count() == 0


def test_a_refused_plan_writes_no_batch_counts_and_lists_unknown_folders_and_names_the_template(tmp_path):
    root = dermnet_like(tmp_path / "dermnet")

    with pytest.raises(CommandError) as error:
        run_text(root, "--source", "dermnet")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_images", str(root), "--json", stdout=out)

    message = str(error.value)
    assert message.startswith("25 folders match no class")
    assert "… and 5 more (--json lists them all)" in message
    assert "--write-map-template" in message and "Nothing was imported." in message
    assert sorted(json.loads(out.getvalue().splitlines()[-1])["unmapped"]) == DERMNET_FOLDERS
    assert ImportBatch.objects.count() == 0, "a refused plan leaves no batch row"
    assert Image.objects.count() == 0


def test_map_template_then_map_file_with_codes_indices_and_skip_imports_the_rest(tmp_path):
    root = dermnet_like(tmp_path / "dermnet")
    template = tmp_path / "map.csv"

    run(root, "--write-map-template", str(template))
    rows = list(csv.DictReader(template.open()))
    assert ImportBatch.objects.count() == 0
    assert {row["folder"]: row["code"] for row in rows}[KAGGLE_FOLDERS[2]] == "melanoma"
    assert sum(1 for row in rows if row["code"] == "") == 25
    for number, row in enumerate(row for row in rows if row["code"] == ""):
        row["code"] = "skip" if number < 5 else ("eczema" if number % 2 else "7")  # a code, an index, or skip
    with template.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["folder", "code"])
        writer.writeheader()
        writer.writerows(rows)

    summary = run(root, "--source", "dermnet", "--map-file", str(template), "--map", "Diagnosis 024 Photos=melanoma")

    assert summary["imported"] == 51 - 10 and summary["not_imported_by_mapping"] == 10
    codes = {row["folder"]: row["code"] for row in summary["folders"]}
    assert codes["Diagnosis 024 Photos"] == "melanoma", "--map wins over the map file"
    assert codes["Diagnosis 000 Photos"] == "skip"
    assert Image.objects.filter(source_label__code="psoriasis_lichen_planus").exists()


def test_unmapped_skip_leaves_unknown_folders_out_and_says_so(tmp_path):
    root = dermnet_like(tmp_path / "dermnet")

    summary = run(root, "--source", "dermnet", "--unmapped", "skip")

    assert summary["imported"] == 1 and summary["not_imported_by_mapping"] == 50
    assert Image.objects.get().source_label.code == "melanoma"


def test_a_mapping_file_naming_an_unknown_class_code_is_refused_with_its_line(tmp_path):
    root = dermnet_like(tmp_path / "dermnet")
    (tmp_path / "map.csv").write_text("folder,code\nDiagnosis 000 Photos,eczema\nDiagnosis 001 Photos,rosacea\n")
    (tmp_path / "bad.csv").write_text("name,class\nx,eczema\n")

    with pytest.raises(CommandError, match=r"line 3: unknown class code 'rosacea'.*Known classes: 0 normal_skin"):
        run(root, "--map-file", str(tmp_path / "map.csv"))
    with pytest.raises(CommandError, match="needs the columns folder,code"):
        run(root, "--map-file", str(tmp_path / "bad.csv"))
    assert ImportBatch.objects.count() == 0


def ham10000(root: Path) -> tuple[Path, Path]:
    """A HAM10000-style set: flat image folders, a metadata file with lesion ids and dx (one row
    without an image, one image without a row)."""
    images = {}
    rows = [["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]]
    for number in range(6):
        image_id = f"ISIC_{24306 + number:07d}"
        images[f"HAM10000_images_part_{1 + number % 2}/{image_id}.jpg"] = lesion_jpeg(5, seed=number)
        dx = "nv" if number < 4 else "mel"
        rows.append([f"HAM_{number // 2:07d}", image_id, dx, "histo", f"{40 + number}.0", "male", "back"])
    rows.append(["HAM_0009999", "ISIC_0099999", "bkl", "consensus", "", "unknown", "unknown"])
    images["HAM10000_images_part_1/ISIC_0055555.jpg"] = lesion_jpeg(6, seed=55)
    write_files(root, images)
    metadata = root.parent / "HAM10000_metadata.csv"
    with metadata.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root, metadata


def test_ham10000_metadata_is_joined_stored_per_image_and_unmatched_rows_and_images_are_listed(tmp_path):
    root, metadata = ham10000(tmp_path / "ham")
    (tmp_path / "map.csv").write_text("folder,code\nnv,melanocytic_nevi\nmel,2\nbkl,bkl\n")

    summary = run(
        root,
        "--source",
        "ham10000",
        "--metadata",
        str(metadata),
        "--label-column",
        "dx",
        "--map-file",
        str(tmp_path / "map.csv"),
        "--unmapped",
        "skip",
    )

    assert summary["imported"] == 6
    report = summary["metadata"]
    assert (report["rows"], report["matched_rows"]) == (7, 6)
    assert report["unmatched_rows"] == ["isic_0099999"]
    assert report["images_without_metadata"] == ["HAM10000_images_part_1/ISIC_0055555.jpg"]
    image = Image.objects.get(provenance__source_path__endswith="ISIC_0024306.jpg")
    assert image.metadata == {
        "lesion_id": "HAM_0000000",
        "image_id": "ISIC_0024306",
        "dx": "nv",
        "dx_type": "histo",
        "age": 40,
        "sex": "male",
        "body_site": "back",
    }
    assert image.source_label.code == "melanocytic_nevi", "the label comes from dx, through the mapping"
    assert Image.objects.get(provenance__source_path__endswith="ISIC_0024310.jpg").source_label.code == "melanoma"


def test_metadata_files_that_cannot_be_joined_stop_the_import_before_anything_is_written(tmp_path):
    root, _ = ham10000(tmp_path / "ham")
    cases = {
        "no_join.csv": ("lesion,age\nHAM_1,40\n", "no image_id or filename column"),
        "duplicated.csv": (
            "image_id,age\nISIC_0024306,40\nISIC_0024307,41\nISIC_0024306,42\n",
            re.escape("gives 1 image_id values more than once: ISIC_0024306 (lines 2 and 4)"),
        ),
        "binary.csv": ("\x00\x01\x02", "not a CSV file"),
        "bad_age.csv": ("image_id,age\nISIC_0024306,forty\n", "age 'forty' is not a number"),
        "bad_modality.csv": ("filename,modality\nISIC_0024306.jpg,xray\n", "not clinical or dermoscopic"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(CommandError, match=message):
            run(root, "--metadata", str(tmp_path / name), "--unmapped", "skip")
    (tmp_path / "latin1.csv").write_bytes("image_id,body_site\nISIC_0024306,Gesäß\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not a UTF-8 CSV file"):
        run(root, "--metadata", str(tmp_path / "latin1.csv"), "--unmapped", "skip")
    assert ImportBatch.objects.count() == 0 and Image.objects.count() == 0


def test_generic_metadata_columns_are_cleaned_and_filterable_on_the_page_and_in_the_api(tmp_path, client, api, curator):
    write_files(tmp_path / "clinic", {f"{KAGGLE_FOLDERS[1]}/p{n}.jpg": lesion_jpeg(seed=n) for n in range(3)})
    (tmp_path / "meta.csv").write_text(
        "filename,patient_id,lesion_id,age,sex,body_site,fitzpatrick,modality\n"
        "p0.jpg,P1,L1,34,F,forearm,IV,dermoscopic\n"
        "p1.jpg,P1,L2,34,F,scalp,4,clinical\n"
        "p2.jpg,P2,L3,71,m,back,II,clinical\n"
    )
    run(tmp_path / "clinic", "--source", "clinic", "--metadata", str(tmp_path / "meta.csv"))
    client.force_login(curator)

    first = Image.objects.get(provenance__source_path__endswith="p0.jpg")
    page = client.get("/curation/?modality=clinical&fitzpatrick=4").content.decode()
    listed = api(curator).get("/api/v1/images/?sex=female").json()
    detail = api(curator).get(f"/api/v1/images/{first.pk}/").json()

    assert first.metadata["fitzpatrick"] == 4 and first.metadata["sex"] == "female"
    assert "1 images" in page or "1 image" in page
    assert listed["count"] == 2
    assert detail["metadata"]["modality"] == "dermoscopic" and detail["metadata"]["patient_id"] == "P1"
    assert api(curator).get("/api/v1/images/?fitzpatrick=9").status_code == 400


def test_readers_get_clinical_context_but_never_dx_or_the_source_label(tmp_path, api, reviewer):
    root, metadata = ham10000(tmp_path / "ham")
    (tmp_path / "map.csv").write_text("folder,code\nnv,5\nmel,2\nHAM10000_images_part_1,skip\n")
    args = ["--metadata", str(metadata), "--label-column", "dx", "--map-file", str(tmp_path / "map.csv")]
    run(root, "--source", "ham10000", *args)

    items = api(reviewer).get("/api/v1/review-queue/next/?count=10").json()["items"]

    assert items, "the reader gets images"
    contexts = [item["clinical_context"] for item in items]
    assert any(context == {"age": 40, "sex": "male", "body_site": "back"} for context in contexts)
    body = json.dumps(items)
    assert "dx" not in body and "histo" not in body and "HAM_" not in body and "melanocytic" not in body


# --- bad inputs ----------------------------------------------------------------------------------


def test_too_small_and_blank_images_are_rejected_with_their_reason(tmp_path, settings):
    folder = KAGGLE_FOLDERS[1]
    write_files(
        tmp_path / "set",
        {
            f"{folder}/black10.png": encode(PILImage.new("RGB", (10, 10)), "PNG"),
            f"{folder}/narrow.jpg": lesion_jpeg(seed=1, size=(200, 63)),
            f"{folder}/grey.jpg": encode(PILImage.new("RGB", (640, 480), (128, 128, 128)), "JPEG"),
            f"{folder}/white.png": encode(PILImage.new("RGB", (300, 200), (255, 255, 255)), "PNG"),
            f"{folder}/ok.jpg": lesion_jpeg(seed=2, size=(200, 64)),
            f"{folder}/thumb.jpg": lesion_jpeg(seed=3, size=(40, 30)),
        },
    )

    summary = run(tmp_path / "set", "--source", "clinic")

    reasons = {Path(row["path"]).name: row["reason"] for row in summary["rejected"]}
    assert reasons["black10.png"].startswith("too small: 10×10 px") and "64 px" in reasons["black10.png"]
    assert reasons["narrow.jpg"].startswith("too small: 200×63 px")
    assert reasons["grey.jpg"].startswith("blank") and reasons["white.png"].startswith("blank")
    assert summary["imported"] == 1
    assert reasons["thumb.jpg"].startswith("too small: 40×30 px")
    settings.DERMCURATE_MIN_IMAGE_SIDE = 8
    again = {Path(r["path"]).name: r["reason"] for r in run(tmp_path / "set", "--source", "c")["rejected"]}
    assert "thumb.jpg" not in again and again["black10.png"].startswith("blank")


def test_files_that_are_not_images_are_listed_as_skipped_by_content_not_extension(tmp_path):
    folder = KAGGLE_FOLDERS[1]
    write_files(
        tmp_path / "set",
        {
            f"{folder}/notes.txt": b"Patient consented.\n",
            f"{folder}/report.pdf": b"%PDF-1.4 ...",
            f"{folder}/scan": lesion_jpeg(seed=3),  # a JPEG without a suffix is an image
            f"{folder}/photo.jpg": lesion_jpeg(seed=4),
            "metadata.csv": b"image_id,age\nx,3\n",
            ".DS_Store": b"\x00\x00\x00\x01Bud1",
        },
    )

    summary = run(tmp_path / "set", "--source", "clinic")

    skipped = {row["path"]: row["reason"] for row in summary["skipped"]}
    assert skipped == {
        f"{folder}/notes.txt": "not an image: a text file",
        f"{folder}/report.pdf": "not an image: a PDF document",
        "metadata.csv": "not an image: a CSV text file (a metadata file? pass it with --metadata)",
    }
    assert summary["imported"] == 2
    batch = ImportBatch.objects.get()
    assert set(batch.rejected_files.filter(kind="skipped").values_list("path", flat=True)) == set(skipped)


def test_notes_txt_inside_a_zip_is_listed_as_skipped_with_its_reason(tmp_path, client, curator):
    archive = write_zip(
        tmp_path / "set.zip",
        {f"{KAGGLE_FOLDERS[1]}/a.jpg": lesion_jpeg(seed=1), f"{KAGGLE_FOLDERS[1]}/notes.txt": b"hi"},
    )

    summary = run(archive, "--source", "zipped")
    client.force_login(curator)
    page = client.get(f"/curation/imports/{ImportBatch.objects.get().pk}/").content.decode()

    assert summary["skipped"] == [{"path": f"{KAGGLE_FOLDERS[1]}/notes.txt", "reason": "not an image: a text file"}]
    assert "notes.txt" in page and "Skipped files" in page


def test_zip_expansion_is_counted_over_all_members_against_both_limits(tmp_path, settings):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number in range(60):  # each member under 1 MB, highly compressible: only the total gives it away
            archive.writestr(f"{KAGGLE_FOLDERS[1]}/part{number}.jpg", b"\0" * 200_000)
    assert many.stat().st_size < 12_000_000 / settings.DERMCURATE_ZIP_MAX_RATIO

    with pytest.raises(CommandError, match=r"its own size.*DERMCURATE_ZIP_MAX_RATIO"):
        run(many, "--source", "z")
    settings.DERMCURATE_ZIP_MAX_RATIO = 100_000
    settings.DERMCURATE_ZIP_MAX_BYTES = 5_000_000
    with pytest.raises(CommandError, match=r"60 entries would unpack to 0.01 GB.*DERMCURATE_ZIP_MAX_BYTES"):
        run(many, "--source", "z")
    assert ImportBatch.objects.count() == 0


# --- conflicts -----------------------------------------------------------------------------------


def test_conflicting_exact_duplicates_go_to_adjudication_and_a_rule_resolves_them_audited(
    tmp_path, client, curator, adjudicator
):
    files = {}
    for number in range(3):
        same = lesion_jpeg(seed=number)
        files[f"atlas/{KAGGLE_FOLDERS[1]}/e{number}.jpg"] = same
        files[f"atlas/{KAGGLE_FOLDERS[3]}/a{number}.jpg"] = same
    files[f"atlas/{KAGGLE_FOLDERS[5]}/n.jpg"] = lesion_jpeg(5, seed=9)
    write_files(tmp_path / "set", files)
    run(tmp_path / "set", "--source", "atlas")
    client.force_login(adjudicator)

    disputed = Image.objects.filter(status="disputed")
    assert disputed.count() == 3 and all(image.conflicting_source_labels for image in disputed)
    adjudication = client.get(f"/adjudicate/{disputed[0].pk}/")
    assert adjudication.status_code == 200
    assert "eczema" in adjudication.content.decode() and "atopic_dermatitis" in adjudication.content.decode()

    out = io.StringIO()
    call_command("resolve_conflicts", "--prefer", "no-such-folder", "--json", stdout=out)
    assert json.loads(out.getvalue())["left_open"] == sorted(image.pk for image in disputed)
    client.force_login(curator)
    response = client.post("/curation/conflicts/resolve/", {"prefer": KAGGLE_FOLDERS[3]})

    assert response.status_code == 302
    assert set(Image.objects.filter(conflicting_source_labels=True).values_list("status", "label__code")) == {
        ("labeled", "atopic_dermatitis")
    }
    assert AuditEvent.objects.filter(action="conflict_resolved").count() == 3
    assert AuditEvent.objects.filter(action="conflicts_resolved").last().actor == curator
    assert Image.objects.get(provenance__source_path__endswith="n.jpg").status == "pending"


def test_resolve_conflicts_skip_excludes_them(tmp_path):
    same = lesion_jpeg(seed=1)
    write_files(tmp_path / "set", {f"{KAGGLE_FOLDERS[1]}/a.jpg": same, f"{KAGGLE_FOLDERS[2]}/b.jpg": same})
    run(tmp_path / "set", "--source", "s")

    out = io.StringIO()
    call_command("resolve_conflicts", "--prefer", "skip", "--json", stdout=out)

    assert json.loads(out.getvalue())["excluded"] == 1
    image = Image.objects.get()
    assert image.status == "excluded" and "conflicting source labels" in image.exclusion_comment
    assert RejectedFile.objects.count() == 0
