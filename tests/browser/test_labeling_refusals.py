"""The labeling page never refuses silently: a taken item, a CSRF failure, an expired
session and the Back button each leave the scientist knowing what happened to their value."""

import re

import pytest

from labeling import services
from labeling.models import LabelQueueItem, QueueStatus
from tests.factories import LabelQueueItemFactory, MLModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def two_items(db):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    return [LabelQueueItemFactory(model=model, priority_score=10.0 - i, prediction=-2.0) for i in range(2)]


def test_an_item_taken_while_open_says_who_took_it_and_that_the_value_was_not_saved(  # type: ignore[no-untyped-def]
    page, login, live_server, scientist, other_scientist, two_items
):
    first, _ = two_items
    login(scientist)
    # Opened without claiming it (as "Next" does); Olga claims it meanwhile.
    page.goto(f"{live_server.url}/queue/label/{first.pk}/")
    services.queue_item_claim_next(user=other_scientist)
    page.locator("#id_value").fill("-3.3")
    page.keyboard.press("Enter")
    alert = page.locator("#label-panel [role=alert]")
    alert.wait_for()
    text = alert.inner_text()
    assert "olga-scientist took this item while you had it open" in text
    assert "-3.3 was not saved" in text
    assert page.url.endswith(f"/queue/label/{first.pk}/")  # stayed put: the message is the answer
    assert page.locator("#label-panel a:has-text('Your next item')").get_attribute("href") == "/queue/label/"
    first.refresh_from_db()
    assert first.assigned_to == other_scientist and first.label is None


def test_a_refusal_that_is_not_a_page_of_ours_still_shows_in_the_panel(  # type: ignore[no-untyped-def]
    page, login, live_server, scientist, two_items
):
    first, _ = two_items
    login(scientist)
    page.goto(f"{live_server.url}/queue/label/{first.pk}/")
    # A stale token (a new session in another tab, say): Django's CSRF check answers 403.
    page.evaluate("""document.body.setAttribute('hx-headers', '{"X-CSRFToken": "stale"}');
        document.querySelectorAll('input[name=csrfmiddlewaretoken]').forEach(i => { i.value = 'stale'; });""")
    page.locator("#id_value").fill("-1.5")
    page.keyboard.press("Enter")
    alert = page.locator("#label-panel [role=alert]")
    alert.wait_for()
    assert "-1.5 was not saved" in alert.inner_text()
    assert "403" in alert.inner_text()
    first.refresh_from_db()
    assert first.label is None


def test_an_expired_session_goes_to_login_and_back_to_the_item_with_the_value(  # type: ignore[no-untyped-def]
    page, login, live_server, scientist, two_items
):
    first, _ = two_items
    login(scientist)
    item_url = f"/queue/label/{first.pk}/"
    page.goto(f"{live_server.url}{item_url}")
    page.context.clear_cookies(name="sessionid")  # the session expires; the CSRF cookie lives on
    page.locator("#id_value").fill("-4.25")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/accounts/login/\?next=.*"))
    assert page.url.endswith(f"?next={item_url}")
    assert page.locator("#label-panel").count() == 0
    page.fill("input[name=username]", scientist.username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}{item_url}")
    # The typed value is back in the form (not saved yet), and says so.
    assert page.locator("#id_value").input_value() == "-4.25"
    assert "not saved yet" in page.locator("#label-panel").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: item_url not in url)
    first.refresh_from_db()
    assert first.label == -4.25


def test_back_after_saving_shows_the_labeled_item_not_a_stale_form(  # type: ignore[no-untyped-def]
    page, login, live_server, scientist, two_items
):
    first, second = two_items
    login(scientist)
    page.click("nav >> text=Labeling")
    page.wait_for_url(f"**/queue/label/{first.pk}/")
    page.locator("#id_value").fill("-2.5")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/queue/label/{second.pk}/")
    page.go_back()
    page.wait_for_url(f"**/queue/label/{first.pk}/")
    assert page.locator("#label-form").count() == 0
    assert "Labeled" in page.locator(".page-head h2").inner_text()
    assert LabelQueueItem.objects.get(pk=first.pk).status == QueueStatus.LABELED


def test_saving_a_classification_item_without_a_class_keeps_focus_on_the_choices(  # type: ignore[no-untyped-def]
    page, login, live_server, scientist
):
    from tests.factories import AssayFactory

    assay = AssayFactory(task_type="classification", classes=["low", "high"], units="")
    item = LabelQueueItemFactory(model=MLModelFactory(assay=assay), prediction=0.0, probabilities=[0.7, 0.3])
    login(scientist)
    page.goto(f"{live_server.url}/queue/label/{item.pk}/")
    page.keyboard.press("Enter")
    page.locator("#value-error").wait_for()
    assert page.locator("#value-error").inner_text() == "pick a class"
    page.wait_for_function("document.activeElement && document.activeElement.dataset.classKey === '1'")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/queue/label/{item.pk}/" not in url)
    item.refresh_from_db()
    assert assay.format_value(item.label) == "high"
