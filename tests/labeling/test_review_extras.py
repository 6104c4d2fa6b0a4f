"""What a dermatologist also gets: clinical context, full resolution, a reference gallery; and
adjudication's undo and page input."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image as PILImage

from core.models import AuditEvent
from curation.models import DuplicateGroup, Image
from labeling.models import Adjudication
from labeling.services.reviews import adjudication_submit, adjudication_undo
from tests.conftest import make_user
from tests.reviewing import decide

pytestmark = pytest.mark.django_db


# --- clinical context ------------------------------------------------------------------------------------------------


def test_the_queue_shows_clinical_context_and_nothing_else_of_the_metadata(api, reviewer, image_factory):
    image_factory(
        metadata={
            "age": 45.0,
            "sex": "female",
            "body_site": "lower_extremity",
            "fitzpatrick": 3,
            "modality": "dermoscopic",
            "dx": "mel",
            "lesion_id": "HAM_0001",
            "patient_id": "P-17",
            "dx_type": "histo",
        },
        source_code="melanoma",
    )

    response = api(reviewer).get("/api/v1/review-queue/next/?count=1")

    item = response.json()["items"][0]
    assert item["clinical"] == [
        {"key": "age", "name": "Age", "value": "45"},
        {"key": "sex", "name": "Sex", "value": "Female"},
        {"key": "body_site", "name": "Body site", "value": "Lower extremity"},
        {"key": "fitzpatrick", "name": "Fitzpatrick type", "value": "III"},
        {"key": "modality", "name": "Modality", "value": "Dermoscopic"},
    ]
    text = response.content.decode()
    for secret in ("mel", "HAM_0001", "P-17", "histo", "melanoma"):
        assert secret not in text.replace("melanocytic", "")


def test_an_image_without_metadata_has_no_clinical_context(api, reviewer, image_factory):
    image_factory(metadata={"age": "unknown", "sex": ""})
    image_factory()

    items = api(reviewer).get("/api/v1/review-queue/next/?count=2").json()["items"]

    assert [item["clinical"] for item in items] == [[], []]


# --- full resolution -------------------------------------------------------------------------------------------------


def photo_with_gps(path, size):
    picture = PILImage.new("RGB", size, (180, 120, 100))
    for x in range(0, size[0], 40):
        picture.paste((90, 60, 50), (x, 0, x + 8, size[1]))
    exif = PILImage.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS
    picture.save(path, "JPEG", exif=exif.tobytes(), quality=92)


@pytest.mark.parametrize("backend", ["disk", "s3"])
def test_full_resolution_is_the_original_size_without_metadata_and_made_once(
    request, backend, api, client, settings, reviewer, tmp_path
):
    bucket = request.getfixturevalue("s3_storage") if backend == "s3" else None
    settings.DERMCURATE_SANITIZED_MAX_SIDE = 400
    folder = tmp_path / "set" / "1. Eczema 1677"
    folder.mkdir(parents=True)
    photo_with_gps(folder / "big.jpg", (1200, 900))
    call_command("import_images", str(tmp_path / "set"), "--source", "clinic", stdout=io.StringIO())
    image = Image.objects.get()
    client.force_login(reviewer)

    served = client.get(f"/files/images/{image.pk}/image.jpg")
    full = client.get(f"/files/images/{image.pk}/full.jpg")
    again = client.get(f"/files/images/{image.pk}/full.jpg")

    assert PILImage.open(io.BytesIO(b"".join(served.streaming_content))).size == (400, 300)
    data = b"".join(full.streaming_content)
    assert full.status_code == 200 and full["Content-Type"] == "image/jpeg"
    picture = PILImage.open(io.BytesIO(data))
    assert picture.size == (1200, 900)
    assert not picture.getexif() and b"PhoneMaker" not in data
    assert b"".join(again.streaming_content) == data
    assert data != (tmp_path / "set" / "1. Eczema 1677" / "big.jpg").read_bytes(), "never the original file"
    if bucket is not None:
        assert bucket.read(f"full/{image.sha256[:2]}/{image.sha256[2:4]}/{image.sha256}.jpg") == data
    client.logout()
    assert client.get(f"/files/images/{image.pk}/full.jpg").status_code == 401


# --- the reference gallery -------------------------------------------------------------------------------------------


def test_the_gallery_shows_final_labels_of_the_class_never_this_image_or_its_duplicates(
    api, reviewer, curator, image_factory
):
    group = DuplicateGroup.objects.create()
    on_screen = image_factory(duplicate_group=group)
    copy = image_factory(status="labeled", label_id=_label("bcc"), duplicate_group=group)
    shown = [image_factory(status="labeled", label_id=_label("bcc")) for _ in range(14)]
    image_factory(status="labeled", label_id=_label("melanoma"))
    image_factory(source_code="bcc")  # pending: its folder says bcc, but nobody decided

    response = api(reviewer).get(f"/api/v1/reference-images/?label=bcc&exclude={on_screen.pk}")
    unknown = api(reviewer).get("/api/v1/reference-images/?label=rosacea")
    missing = api(reviewer).get("/api/v1/reference-images/")

    body = response.json()
    ids = [item["image"] for item in body["items"]]
    assert body["name"] == "Basal cell carcinoma (BCC)"
    assert len(ids) == 12 and set(ids) <= {image.pk for image in shown}
    assert on_screen.pk not in ids and copy.pk not in ids
    assert body["items"][0]["thumbnail_url"].endswith("/thumbnail.jpg")
    assert unknown.status_code == 400 and missing.status_code == 400
    assert api(curator).get("/api/v1/reference-images/?label=bcc").status_code == 403


def _label(code):
    from curation.models import LabelClass

    return LabelClass.objects.get(code=code).pk


# --- adjudication ----------------------------------------------------------------------------------------------------


def disputed(image_factory):
    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    image = image_factory()
    decide(reader=ana, image_id=image.pk, label_code="melanoma")
    decide(reader=ben, image_id=image.pk, label_code="melanocytic_nevi")
    return image


def test_an_adjudication_can_be_undone_within_the_window(adjudicator, image_factory):
    image = disputed(image_factory)
    adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="melanoma", note="asymmetry")

    adjudication_undo(adjudicator=adjudicator, image_id=image.pk)

    image.refresh_from_db()
    assert (image.status, image.label) == ("disputed", None)
    assert not Adjudication.objects.exists()
    undone = AuditEvent.objects.get(action="adjudication_undone", target__startswith="adjudication:")
    assert undone.before["label"] == "melanoma" and undone.before["note"] == "asymmetry"
    adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="melanocytic_nevi")
    image.refresh_from_db()
    assert image.label.code == "melanocytic_nevi"


def test_an_adjudication_undo_is_refused_late_by_others_or_after_an_override(adjudicator, curator, image_factory):
    from curation.services.images import image_override

    late, other, overridden = disputed(image_factory), image_factory(), image_factory()
    for image in (other, overridden):
        image.status = "disputed"
        image.save()
    for image in (late, other, overridden):
        adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="melanoma")
    Adjudication.objects.filter(image=late).update(created_at=timezone.now() - timedelta(minutes=10))
    image_override(image=overridden, actor=curator, label_code="bkl", reason="second opinion")

    with pytest.raises(Exception, match="can no longer be undone"):
        adjudication_undo(adjudicator=adjudicator, image_id=late.pk)
    with pytest.raises(Exception, match="no adjudication of image"):
        adjudication_undo(adjudicator=make_user("senior2", "adjudicator"), image_id=other.pk)
    with pytest.raises(Exception, match="changed after your adjudication"):
        adjudication_undo(adjudicator=adjudicator, image_id=overridden.pk)


def test_the_adjudication_page_names_the_decision_offers_undo_and_refuses_bad_input(client, adjudicator, image_factory):
    image = disputed(image_factory)
    client.force_login(adjudicator)
    url = f"/adjudicate/{image.pk}/"

    page = client.get(url).content.decode()
    bad_label = client.post(url, {"label": "rosacea"})
    nothing = client.post(url, {})
    no_reason = client.post(url, {"cannot_judge": "1"})
    long_note = client.post(url, {"label": "melanoma", "note": "x" * 4001})
    decided = client.post(url, {"label": "melanoma"}, follow=True)
    bad_undo = client.post("/adjudicate/undo/", {"image": "abc"})
    undone = client.post("/adjudicate/undo/", {"image": image.pk}, follow=True)

    assert "Melanocytic nevi (NV)" in page and "melanocytic_nevi</" not in page
    for response, field in ((bad_label, "label"), (nothing, "label"), (no_reason, "reason"), (long_note, "note")):
        assert response.status_code == 400 and field in response.content.decode()
    text = decided.content.decode()
    assert f"Image {image.pk} → <strong>Melanoma</strong>" in text and "Undo" in text
    assert bad_undo.status_code == 400
    assert undone.status_code == 200 and "is in dispute again" in undone.content.decode()
    image.refresh_from_db()
    assert image.status == "disputed"


def test_reviews_on_the_adjudication_page_show_unsure_and_changes(client, adjudicator, image_factory):
    from labeling.services.reviews import review_change

    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    image = image_factory()
    decide(reader=ana, image_id=image.pk, label_code="eczema")
    review_change(reader=ana, image_id=image.pk, label_code="bkl", confidence="unsure")
    decide(reader=ben, image_id=image.pk, label_code="bcc")
    client.force_login(adjudicator)

    page = client.get(f"/adjudicate/{image.pk}/").content.decode()

    assert "changed" in page and "unsure" in page and "Benign keratosis-like lesions (BKL)" in page
