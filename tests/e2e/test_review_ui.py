"""Readers and adjudicators use the real pages in a real browser, by keyboard."""

import io

import pytest
from django.core.management import call_command

from curation.demo_images import write_demo_dataset
from curation.models import Image
from labeling.models import Review
from tests.conftest import make_user
from tests.e2e.conftest import sign_in
from tests.reviewing import decide

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def six_images(tmp_path):
    write_demo_dataset(tmp_path / "set", per_class=1, size=(320, 240), classes=[0, 1, 2, 5, 9, 10])
    call_command("import_images", str(tmp_path / "set"), "--source", "demo", stdout=io.StringIO())
    return list(Image.objects.order_by("pk"))


def current_image(page) -> int:
    page.wait_for_function("() => document.getElementById('review').dataset.state === 'ready'")
    return int(page.get_attribute("#review", "data-current"))


def wait_for_next(page, previous: int) -> None:
    page.wait_for_function(
        "previous => (r => r.dataset.state !== 'loading' && r.dataset.current !== previous)"
        "(document.getElementById('review'))",
        arg=str(previous),
    )


def test_reader_labels_by_keys_flags_not_skin_undoes_and_reaches_the_end(page, live_server, six_images):
    make_user("dr.ana", "reviewer")
    sign_in(page, live_server, "dr.ana")
    page.keyboard.press("Tab")  # keyboard alone from here on
    page.goto(f"{live_server.url}/review/")
    page.wait_for_selector("#current-image:not([hidden])")
    seen = []

    for key in ["1", "2", "5", "9", "W"]:
        image = current_image(page)
        seen.append(image)
        page.keyboard.press(key)
        wait_for_next(page, image)
    flagged = current_image(page)
    page.keyboard.press("X")
    page.wait_for_selector("#reasons:not([hidden])")
    page.keyboard.press("1")  # not skin
    page.wait_for_selector("#queue-empty:not([hidden])")
    assert page.get_attribute("#review", "data-state") == "empty"

    page.keyboard.press("Z")  # undo the not-skin flag: the image comes back
    page.wait_for_function("id => document.getElementById('review').dataset.current === id", arg=str(flagged))
    page.keyboard.press("0")  # normal skin after all
    page.wait_for_selector("#queue-empty:not([hidden])")

    reviews = {r.image_id: r for r in Review.objects.select_related("label")}
    assert set(reviews) == {image.pk for image in six_images}
    assert [reviews[i].label.code for i in seen] == [
        "eczema",
        "melanoma",
        "melanocytic_nevi",
        "fungal_infections",
        "viral_infections",
    ]
    assert reviews[flagged].label.code == "normal_skin"
    retracted = Review.objects.exclude(retracted_at=None).get()
    assert (retracted.image_id, retracted.reason) == (flagged, "not_skin")
    assert all(r.seconds_spent is not None and r.seconds_spent >= 0 for r in reviews.values())
    assert "Left for you 0" in page.inner_text("#progress")


def test_skip_and_zoom_work_by_keyboard(page, live_server, six_images):
    make_user("dr.ben", "reviewer")
    sign_in(page, live_server, "dr.ben")
    page.goto(f"{live_server.url}/review/")
    page.wait_for_selector("#current-image:not([hidden])")
    first = current_image(page)

    page.keyboard.press("+")
    page.keyboard.press("+")
    zoomed = page.eval_on_selector("#current-image", "e => e.style.transform")
    page.keyboard.press("R")
    reset = page.eval_on_selector("#current-image", "e => e.style.transform")
    page.keyboard.press("S")
    wait_for_next(page, first)
    second = current_image(page)
    page.keyboard.press("?")

    assert "scale(1.5625)" in zoomed and "scale(1)" in reset
    assert second != first
    assert page.is_visible("#help")
    assert Review.objects.count() == 0


def test_review_screen_fits_a_tablet(browser, live_server, six_images):
    make_user("dr.cat", "reviewer")
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    page = context.new_page()
    sign_in(page, live_server, "dr.cat")
    page.goto(f"{live_server.url}/review/")
    page.wait_for_selector("#current-image:not([hidden])")
    image = current_image(page)

    page.tap("button[data-label='bcc']")
    wait_for_next(page, image)

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert Review.objects.get().label.code == "bcc"
    context.close()


def test_adjudicator_resolves_a_dispute(page, live_server, six_images):
    ana, ben = make_user("dr.ana", "reviewer"), make_user("dr.ben", "reviewer")
    make_user("dr.senior", "adjudicator")
    image = six_images[0]
    decide(reader=ana, image_id=image.pk, label_code="eczema")
    decide(reader=ben, image_id=image.pk, label_code="atopic_dermatitis", comment="flexures")
    sign_in(page, live_server, "dr.senior")

    page.goto(f"{live_server.url}/adjudicate/")
    page.click("text=Start with the oldest dispute")
    page.wait_for_selector("#adjudication-form")
    text = page.inner_text("main")
    page.keyboard.press("N")
    page.keyboard.type("typical distribution")
    page.keyboard.press("Escape")
    page.keyboard.press("3")  # atopic dermatitis
    page.wait_for_url(f"{live_server.url}/adjudicate/")

    assert "dr.ana" in text and "dr.ben" in text and "flexures" in text and "Source label" in text
    image.refresh_from_db()
    assert (image.status, image.label.code) == ("labeled", "atopic_dermatitis")
    assert image.adjudications.get().note == "typical distribution"
