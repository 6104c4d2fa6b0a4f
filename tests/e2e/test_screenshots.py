"""The README's screenshots, taken in Debian's chromium. Opt-in, because it writes into the checkout:

    DERMCURATE_SCREENSHOTS=docs/screenshots scripts/with-test-services.sh \\
        .venv/bin/pytest -p no:cacheprovider tests/e2e/test_screenshots.py

(`make screenshots` runs exactly that.)
"""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from curation.demo_images import write_demo_dataset
from curation.models import Image
from labeling.services.queue import review_lease_release, review_lease_take
from tests.conftest import REPO_ROOT, make_user
from tests.e2e.conftest import sign_in
from tests.reviewing import decide

TARGET = os.environ.get("DERMCURATE_SCREENSHOTS", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not TARGET, reason="set DERMCURATE_SCREENSHOTS=docs/screenshots to take the README's pictures"),
]

SCREENS = {
    "review-desktop.png": {"viewport": {"width": 1440, "height": 900}},
    "review-tablet.png": {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True},
    "review-phone.png": {
        "viewport": {"width": 390, "height": 844},
        "has_touch": True,
        "is_mobile": True,
        "device_scale_factor": 2,
    },
}
CLINICAL = [
    {"age": 63, "sex": "male", "body_site": "back", "fitzpatrick": 2, "modality": "dermoscopic"},
    {"age": 34, "sex": "female", "body_site": "forearm", "fitzpatrick": 4, "modality": "clinical"},
]


@pytest.fixture
def demo(tmp_path):
    write_demo_dataset(tmp_path / "set", per_class=3, size=(900, 675), seed=2026)
    call_command("import_images", str(tmp_path / "set"), "--source", "atlas", stdout=io.StringIO())
    images = list(Image.objects.order_by("random_key"))
    for n, image in enumerate(images):
        Image.objects.filter(pk=image.pk).update(metadata=CLINICAL[n % 2])
    return images


def ready(page):
    page.wait_for_function("() => document.getElementById('review').dataset.state === 'ready'")


def pictures_loaded(page):
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => [...document.images].every(i => i.hidden || (i.complete && i.naturalWidth > 0))")


def test_take_the_screenshots(browser, live_server, demo):
    folder = REPO_ROOT / TARGET if not Path(TARGET).is_absolute() else Path(TARGET)
    folder.mkdir(parents=True, exist_ok=True)
    ana, ben = make_user("dr.demo-1", "reviewer"), make_user("dr.demo-2", "reviewer")
    make_user("dr.ana", "reviewer")
    make_user("dr.senior", "adjudicator")
    disputed = demo[-1]
    decide(reader=ana, image_id=disputed.pk, label_code="bkl", comment="stuck-on look", seconds_spent=6.2)
    decide(reader=ben, image_id=disputed.pk, label_code="seborrheic_keratoses", seconds_spent=4.8)

    for name, options in SCREENS.items():
        context = browser.new_context(**options)
        page = context.new_page()
        sign_in(page, live_server, "dr.ana")
        page.goto(f"{live_server.url}/review/")
        ready(page)
        if name == "review-desktop.png":
            page.keyboard.press("2")
            page.wait_for_function("() => document.getElementById('toast').textContent.startsWith('Saved')")
            ready(page)
            page.keyboard.press("+")
        pictures_loaded(page)
        page.screenshot(path=str(folder / name))
        context.close()

    for image, code in zip(
        demo[10:16], ["eczema", "melanoma", "bcc", "psoriasis_lichen_planus", "bkl", "eczema"], strict=True
    ):
        decide(reader=make_user("dr.ana", "reviewer"), image_id=image.pk, label_code=code, seconds_spent=5.0)
    skipped = demo[17]
    reader = make_user("dr.ana", "reviewer")
    review_lease_take(reader=reader, image=skipped)
    review_lease_release(reader=reader, image_id=skipped.pk)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    sign_in(page, live_server, "dr.ana")
    page.goto(f"{live_server.url}/review/history/")
    pictures_loaded(page)
    page.screenshot(path=str(folder / "history.png"))
    context.close()

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    sign_in(page, live_server, "dr.senior")
    page.goto(f"{live_server.url}/adjudicate/{disputed.pk}/")
    page.wait_for_selector("#adjudication-form")
    pictures_loaded(page)
    page.screenshot(path=str(folder / "adjudication-1366x768.png"))
    context.close()

    assert {path.name for path in folder.glob("*.png")} >= {*SCREENS, "history.png", "adjudication-1366x768.png"}
