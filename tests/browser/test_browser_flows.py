"""End-to-end flows in headless Chromium: label with the keyboard, select, assign, retrain, read-only viewer."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cycles.models import ActiveLearningCycle
from cycles.services import cycle_select
from labeling import services as queue_services
from labeling.models import LabelQueueItem, QueueStatus
from tests.browser.conftest import screenshot
from tests.conftest import worker_env
from tests.factories import LabelQueueItemFactory, MLModelFactory
from tests.solubility import solubility_setup

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _small_setup():  # type: ignore[no-untyped-def]
    # The default test ARTIFACT_ROOT, so a worker subprocess finds the same files.
    return solubility_setup(labeled=40, pool=40, validation=20)


def test_a_scientist_claims_and_labels_with_the_keyboard(page, login, live_server, lead, scientist):  # type: ignore[no-untyped-def]
    data = _small_setup()
    cycle_select(model=data["model"], user=lead, strategy="hybrid", batch_size=5)
    login(scientist)
    page.click("nav >> text=Labeling")
    page.wait_for_url(re.compile(r".*/queue/label/[0-9a-f-]{36}/$"))
    first_url = page.url
    first = LabelQueueItem.objects.get(status=QueueStatus.IN_PROGRESS, assigned_to=scientist)
    # The SHAP atom map arrives lazily; wait for it so the screenshot shows the whole page.
    page.wait_for_selector(".explain svg, .explain p", timeout=60_000)
    assert page.locator("text=Keyboard:").is_visible()
    screenshot(page, "labeling")

    page.locator("#id_value").fill("-2.75")
    page.keyboard.press("Enter")  # save & next
    page.wait_for_url(lambda url: url != first_url and "/queue/label/" in url and url.endswith("/"))
    assert page.locator(".messages").inner_text().startswith("Saved -2.75")
    first.refresh_from_db()
    assert first.status == QueueStatus.LABELED and first.label == -2.75 and first.labeled_by == scientist

    second_url = page.url
    page.fill("#label-form textarea[name=notes]", "sample unavailable")
    page.focus("#id_value")
    # The value field has the focus; S still skips (a value never holds an S), and the
    # notes typed above are the skip's reason.
    page.keyboard.press("s")  # skip
    page.wait_for_url(lambda url: url != second_url and "/queue/label/" in url)
    skipped = LabelQueueItem.objects.get(status=QueueStatus.SKIPPED)
    assert skipped.notes == "sample unavailable"
    assert skipped.events.get(action="skip").data == {"reason": "sample unavailable"}


def test_queue_filters_follow_the_back_button(page, login, live_server, viewer):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    for i in range(3):
        LabelQueueItemFactory(model=model, priority_score=float(i))
    LabelQueueItemFactory(model=model, status=QueueStatus.LABELED, label=1.0)
    login(viewer)
    page.goto(f"{live_server.url}/queue/")
    status = page.locator("#queue-filters select[name=status]")
    status.select_option("all")
    page.wait_for_url(re.compile(r".*status=all.*"))
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 4")
    status.select_option("labeled")
    page.wait_for_url(re.compile(r".*status=labeled.*"))
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 1")
    assert "status=labeled" in page.locator("#queue-export").get_attribute("href")
    page.go_back()
    page.wait_for_url(re.compile(r".*status=all.*"))
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 4")
    assert status.input_value() == "all"
    page.go_back()
    page.wait_for_url(f"{live_server.url}/queue/")
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 3")
    assert status.input_value() == "open"


def test_a_lead_previews_queues_assigns_and_retrains(page, login, live_server, lead, scientist, rq_queue):  # type: ignore[no-untyped-def]
    data = _small_setup()
    login(lead)

    # Sample selection: preview (htmx partial with the chemical-space map), then add to the queue.
    page.click("nav >> text=Sample selection")
    page.fill("input[name=batch_size]", "12")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#preview table tbody tr")
    assert page.locator("#preview svg[aria-label='Chemical-space map']").count() == 1
    assert page.locator("#preview tbody tr").count() == 12
    screenshot(page, "selection-preview")
    page.click("button:has-text('Add to queue')")
    page.wait_for_url(re.compile(r".*/queue/\?cycle=.*"))
    assert "Cycle #1 opened: 12 compounds queued." in page.locator(".messages").inner_text()
    assert page.locator("#rows tbody tr").count() == 12
    screenshot(page, "queue")

    # Filter without a reload: the URL follows, the table is swapped.
    page.select_option("select[name=assigned_to]", "none")
    page.wait_for_url(re.compile(r".*assigned_to=none.*"))
    page.select_option("select[name=status]", "pending")
    page.wait_for_url(re.compile(r".*status=pending.*"))
    assert page.locator("#rows tbody tr").count() == 12

    # Bulk assign three items to the scientist.
    boxes = page.locator("input[name=items]")
    for i in range(3):
        boxes.nth(i).check()
    assert page.locator("[data-selected-count]").inner_text() == "3"
    page.select_option("select[name=action]", "assign")
    page.select_option("select[name=assignee]", str(scientist.pk))
    page.click("[data-bulk-apply]")
    page.wait_for_selector(".messages")
    assert "Assigned to sam-scientist: 3 items." in page.locator(".messages").inner_text()
    assert LabelQueueItem.objects.filter(assigned_to=scientist).count() == 3

    # Ten labels arrive (the scientist's work), then the lead retrains and watches the progress.
    for item in LabelQueueItem.objects.filter(status=QueueStatus.PENDING).order_by("-priority_score")[:10]:
        queue_services.label_submit(
            item_id=item.pk, user=scientist, value=data["truth"].get(item.compound_id, -2.0), source="experimental"
        )
    page.click("nav >> text=Cycle history")
    page.click("button:has-text('Retrain')")
    page.wait_for_selector("progress")
    assert "Retraining started" in page.locator(".messages").inner_text()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # The progress fragment stops polling (286) and reloads the page when the job is done.
        page.wait_for_selector("li.timeline-item.complete", timeout=150_000)
    finally:
        output = worker.communicate(timeout=150)[0]
    assert worker.returncode == 0, output
    cycle = ActiveLearningCycle.objects.get(cycle_number=1)
    assert cycle.status == "complete" and cycle.result_model.version == 2
    # The two items left unlabeled go on as cycle #2 on v2.
    carried = ActiveLearningCycle.objects.get(cycle_number=2)
    assert (carried.status, carried.model_id, carried.items_selected) == ("labeling", cycle.result_model_id, 2)
    assert page.locator("li.timeline-item.complete").inner_text().count("v2") >= 1
    screenshot(page, "cycle-history")

    # The new version's model page, and a compound page with its lazy prediction + atom map.
    page.goto(f"{live_server.url}/models/{cycle.result_model.pk}/")
    assert page.locator("svg[aria-label='Predicted against measured on the validation set']").count() == 1
    screenshot(page, "model")
    page.goto(f"{live_server.url}/compounds/{data['pool_ids'][0]}/")
    page.wait_for_selector("#model-predictions .explain", timeout=60_000)
    screenshot(page, "compounds")


def test_a_viewer_sees_everything_and_can_act_on_nothing(page, login, live_server, viewer):  # type: ignore[no-untyped-def]
    model = MLModelFactory(name="Solubility")
    cycle = ActiveLearningCycle.objects.create(model=model, cycle_number=1, selection_strategy="hybrid",
                                               batch_size=3, status="labeling")
    items = [LabelQueueItemFactory(model=model, cycle=cycle) for _ in range(3)]
    login(viewer)
    assert page.locator("#rows tbody tr").count() == 3
    assert page.locator("input[name=items]").count() == 0
    assert page.locator("text=Start labeling").count() == 0
    assert page.locator("nav >> text=Sample selection").count() == 0
    page.click("nav >> text=Labeling")
    page.wait_for_url(f"**/queue/label/{items[0].pk}/")
    assert page.locator("#label-form").count() == 0
    assert page.locator("button:has-text('Skip')").count() == 0
    assert page.locator("text=labeling needs the scientist role").is_visible()
    page.click("nav >> text=Cycle history")
    assert page.locator("text=Cycle #1").is_visible()
    assert page.locator("button:has-text('Retrain')").count() == 0
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.PENDING


def test_a_chemist_searches_by_substructure_and_similarity(page, login, live_server, viewer, library):  # type: ignore[no-untyped-def]
    login(viewer)
    page.click("nav >> text=Compounds")
    page.select_option("select[name=mode]", "substructure")
    page.fill("input[name=q]", "C(=O)[OH]")
    # htmx swaps the results as the query is typed; no full page load.
    page.wait_for_selector("text=2 matches")
    names = page.locator("#results tbody tr td:nth-child(2) a").all_inner_texts()
    assert names == ["acetic acid", "benzoic acid"]
    assert "mode=substructure" in page.url

    page.fill("input[name=q]", "C(")
    page.wait_for_selector("#results [role=alert]")
    assert "not a valid SMARTS or SMILES pattern" in page.inner_text("#results [role=alert]")

    page.select_option("select[name=mode]", "similarity")
    page.fill("input[name=threshold]", "0.3")
    page.fill("input[name=q]", "CCc1ccccc1")
    page.wait_for_selector("#results th:has-text('Tanimoto')")
    first = page.locator("#results tbody tr").first
    assert "ethylbenzene" in first.inner_text() and "1.00" in first.inner_text()
    screenshot(page, "compound-search")


def test_a_phone_sized_screen_never_scrolls_sideways(page, login, live_server, lead, scientist):  # type: ignore[no-untyped-def]
    data = _small_setup()
    cycle_select(model=data["model"], user=lead, strategy="hybrid", batch_size=5)
    page.set_viewport_size({"width": 390, "height": 844})
    login(scientist)
    for path in ("/queue/", "/cycles/", "/compounds/", "/models/"):
        page.goto(f"{live_server.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, (path, width)
    page.goto(f"{live_server.url}/queue/label/")
    page.wait_for_url(re.compile(r".*/queue/label/[0-9a-f-]{36}/.*"))
    wide = page.evaluate("""Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 392)
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392, wide
    # Structure first, then the label form, then the rest (similar compounds, reasons).
    tops = page.evaluate("""[document.querySelector('.structure-large').getBoundingClientRect().top,
        document.querySelector('#id_value').getBoundingClientRect().top,
        document.querySelector('h4.section').getBoundingClientRect().top]""")
    assert tops[0] < tops[1] < tops[2], tops
    assert page.locator("a.skip-link").count() == 1


def test_the_class_key_pressed_is_the_class_saved_when_classes_are_numbers(page, login, live_server, scientist):  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory

    assay = AssayFactory(task_type="classification", classes=["1", "2", "3"], units="")
    item = LabelQueueItemFactory(model=MLModelFactory(assay=assay), prediction=0.0, probabilities=[0.6, 0.3, 0.1])
    login(scientist)
    page.goto(f"{live_server.url}/queue/label/{item.pk}/")
    page.keyboard.press("2")  # the second radio, the class named "2"
    assert page.locator("input[data-class-key='2']").is_checked()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/queue/label/{item.pk}/" not in url)
    item.refresh_from_db()
    assert item.label == 1.0 and assay.format_value(item.label) == "2"


def test_switching_to_a_classification_model_swaps_the_warm_ups_and_parameters(page, login, live_server, lead):  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory

    MLModelFactory(name="a regression model")
    classes = MLModelFactory(name="b classes", assay=AssayFactory(task_type="classification", classes=["x", "y"]))
    login(lead)
    page.goto(f"{live_server.url}/cycles/select/")
    assert page.locator("select[name=warmup] option[value=greedy_sampling]").count() == 1
    assert page.locator("input[name=beta]").count() == 1
    page.select_option("select[name=model]", str(classes.pk))
    page.wait_for_selector("select[name=warmup] option[value=greedy_sampling]", state="detached")
    assert page.locator("input[name=beta]").count() == 0 and page.locator("input[name=xi]").count() == 0


def test_a_lead_queues_a_selection_in_the_background_and_lands_on_its_queue(page, login, live_server, lead, rq_queue):  # type: ignore[no-untyped-def]
    _small_setup()
    login(lead)
    page.goto(f"{live_server.url}/cycles/select/")
    page.fill("input[name=batch_size]", "7")
    page.click("button:has-text('Add in the background')")
    page.wait_for_selector("#selection-job progress")
    assert not ActiveLearningCycle.objects.exists()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # The polled fragment stops (286) and sends the browser to the new cycle's queue.
        page.wait_for_url(re.compile(r".*/queue/\?cycle=.*"), timeout=150_000)
    finally:
        output = worker.communicate(timeout=150)[0]
    assert worker.returncode == 0, output
    assert "Cycle #1 opened: 7 compounds queued." in page.locator(".messages").inner_text()
    assert page.locator("#rows tbody tr").count() == 7
