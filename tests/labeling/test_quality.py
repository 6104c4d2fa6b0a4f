"""The per-class quality dashboard: each number right, and each linking to exactly the images behind it."""

from urllib.parse import urlparse

import pytest

from curation.models import DuplicateGroup, LabelClass
from labeling.selectors.agreement import agreement_report
from tests.assisting import ImageScoreFactory, ModelVersionFactory
from tests.reviewing import decide

pytestmark = pytest.mark.django_db

CODES = ["eczema", "melanoma", "melanocytic_nevi"]


@pytest.fixture
def collection(image_factory, reviewer, reviewer2):
    eczema, melanoma = LabelClass.objects.get(code="eczema"), LabelClass.objects.get(code="melanoma")
    group = DuplicateGroup.objects.create()
    images = {
        "labeled": [image_factory(source_code="eczema") for _ in range(3)],
        "relabeled": image_factory(source_code="eczema"),  # the readers said melanoma
        "pending": image_factory(source_code="eczema"),
        "disputed": image_factory(source_code="eczema"),
        "blurry": image_factory(source_code="eczema", status="excluded", exclusion_reason="blurry"),
        "copy": image_factory(source_code="eczema", status="excluded", exclusion_reason="duplicate"),
        "no_source": image_factory(),
    }
    for image in images["labeled"]:
        decide(reader=reviewer, image_id=image.pk, label_code="eczema")
        decide(reader=reviewer2, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer, image_id=images["relabeled"].pk, label_code="melanoma")
    decide(reader=reviewer2, image_id=images["relabeled"].pk, label_code="melanoma")
    decide(reader=reviewer, image_id=images["disputed"].pk, label_code="eczema")
    decide(reader=reviewer2, image_id=images["disputed"].pk, label_code="melanoma")
    for image in (images["labeled"][0], images["copy"]):
        image.duplicate_group = group
        image.save(update_fields=["duplicate_group"])
    for image in [*images["labeled"], *(image for name, image in images.items() if name != "labeled")]:
        image.refresh_from_db()
    assert images["relabeled"].label == melanoma and images["labeled"][0].label == eczema
    assert images["disputed"].status == "disputed"
    return images


def cells_of(response, code):
    (entry,) = [entry for entry in response.context["rows"] if entry["row"].code == code]
    return entry["cells"]


def images_behind(client, url) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return {image.pk for image in response.context["page"].object_list}


def test_each_number_of_a_class_links_to_its_images(client, curator, collection):
    version = ModelVersionFactory(codes=CODES, production=True)
    # The model: sure it is melanoma on one eczema image, unsure on another, agreeing on the third.
    ImageScoreFactory(model_version=version, image=collection["labeled"][1], calibrated=[0.05, 0.9, 0.05])
    ImageScoreFactory(model_version=version, image=collection["labeled"][2], calibrated=[0.3, 0.6, 0.1])
    ImageScoreFactory(model_version=version, image=collection["labeled"][0], calibrated=[0.9, 0.05, 0.05])
    ImageScoreFactory(model_version=version, image=collection["blurry"], calibrated=[0.05, 0.9, 0.05])
    client.force_login(curator)

    response = client.get("/curation/quality/")

    assert response.status_code == 200
    assert [name for _value, name in response.context["dashboard"].exclusion_reasons] == [
        "Blurry / out of focus",
        "Duplicate of a kept image",
    ]
    cells = cells_of(response, "eczema")
    images, labeled, pending, disputed, blurry, duplicate, kappa, duplicates, recall, precision, disagrees = cells
    assert [c["value"] for c in (images, labeled, pending, disputed, blurry, duplicate, duplicates, disagrees)] == [
        7,
        3,
        1,
        1,
        1,
        1,
        2,
        1,
    ]
    expected_kappa = {row["code"]: row["kappa"] for row in agreement_report().per_class}["eczema"]
    assert expected_kappa is not None and kappa["value"] == expected_kappa and kappa["url"] == "/curation/agreement/"
    assert (recall["value"], precision["value"]) == (0.6, 0.5), "the production model's per-class test metrics"
    assert recall["url"] == f"/ml/models/{version.pk}/"
    ids = {name: image.pk for name, image in collection.items() if not isinstance(image, list)}
    labeled_ids = {image.pk for image in collection["labeled"]}
    assert images_behind(client, images["url"]) == labeled_ids | {
        ids["pending"],
        ids["disputed"],
        ids["blurry"],
        ids["copy"],
    }
    assert images_behind(client, labeled["url"]) == labeled_ids
    assert images_behind(client, pending["url"]) == {ids["pending"]}
    assert images_behind(client, disputed["url"]) == {ids["disputed"]}
    assert images_behind(client, blurry["url"]) == {ids["blurry"]}
    assert images_behind(client, duplicate["url"]) == {ids["copy"]}
    assert images_behind(client, duplicates["url"]) == {collection["labeled"][0].pk, ids["copy"]}
    listed = client.get(disagrees["url"])
    assert [row["image"].pk for row in listed.context["page"].object_list] == [collection["labeled"][1].pk]
    assert [c["value"] for c in cells_of(response, "melanoma")[:2]] == [1, 1], "the readers' class counts"
    html = response.content.decode()
    assert f'href="{labeled["url"].replace("&", "&amp;")}"' in html


def test_the_totals_row_counts_every_image(client, curator, collection):
    client.force_login(curator)

    total = client.get("/curation/quality/").context["total"]

    assert total["row"].images == 9 and total["cells"][0]["value"] == 9
    assert urlparse(total["cells"][0]["url"]).query == ""


def test_without_a_production_model_the_model_columns_are_empty(client, curator, collection):
    client.force_login(curator)

    response = client.get("/curation/quality/")

    cells = cells_of(response, "eczema")
    assert [cell["value"] for cell in cells[-3:]] == [None, None, None]
    assert "No model is in production" in response.content.decode()


def test_the_dashboard_and_its_disagreements_are_for_curators(client, reviewer, adjudicator):
    for user in (reviewer, adjudicator):
        client.force_login(user)
        assert client.get("/curation/quality/").status_code == 403
        assert client.get("/curation/quality/disagreements/").status_code == 403


def test_disagreements_are_sent_for_a_fresh_read_from_their_page(client, curator, collection):
    version = ModelVersionFactory(codes=CODES, production=True)
    contradicted = collection["labeled"][1]
    ImageScoreFactory(model_version=version, image=contradicted, calibrated=[0.02, 0.95, 0.03])
    ImageScoreFactory(model_version=version, image=collection["pending"], calibrated=[0.02, 0.96, 0.02])
    client.force_login(curator)

    page = client.get("/curation/quality/disagreements/?label=eczema")

    html = page.content.decode()
    assert f'name="images" value="{contradicted.pk}"' in html
    assert f'name="images" value="{collection["pending"].pk}"' not in html, "a pending image is being read"
    assert "Melanoma" in html and "0.950" in html
    sent = client.post(
        "/curation/rereviews/request/",
        {"images": [str(contradicted.pk)], "next": "/curation/quality/disagreements/?label=eczema"},
    )
    assert sent.status_code == 302 and sent.url == "/curation/quality/disagreements/?label=eczema"
    contradicted.refresh_from_db()
    assert contradicted.status == "pending"
    assert client.get("/curation/quality/disagreements/?label=nonsense").status_code == 400


def test_the_images_page_takes_the_new_filters_and_refuses_bad_ones(client, curator, collection):
    client.force_login(curator)

    assert client.get("/curation/?record_label=melanoma").context["page"].paginator.count == 1
    assert client.get("/curation/?duplicates=0&record_label=eczema").context["page"].paginator.count == 5
    for bad in ("record_label=nope", "exclusion_reason=bored", "duplicates=maybe"):
        assert client.get(f"/curation/?{bad}").status_code == 400, bad
