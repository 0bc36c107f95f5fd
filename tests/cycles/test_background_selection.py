"""Selection as a background job (big pools): API and page, through a real `rqworker`."""

import pytest

from cycles import services
from cycles.models import ActiveLearningCycle, Job
from cycles.services.selection import PoolSpec
from labeling.models import LabelQueueItem
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db(transaction=True)

SELECT = "/api/active-learning/select/"


@pytest.fixture
def setup(lead, scientist):  # type: ignore[no-untyped-def]
    # The test settings' ARTIFACT_ROOT: the worker process reads the model from there.
    data = solubility_setup()
    data.update(lead=lead, scientist=scientist)
    return data


def test_a_background_selection_queues_the_batch_a_request_would_have(setup, api_for, run_worker):  # type: ignore[no-untyped-def]
    model = setup["model"]
    body = {"model": model.pk, "strategy": "uncertainty", "batch_size": 12, "random_state": 4,
            "params": {"batch": "ranked_batch"}}
    preview = api_for(setup["lead"]).post(SELECT, {**body, "preview": True}, format="json").json()
    response = api_for(setup["lead"]).post(SELECT, {**body, "background": True}, format="json")
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["cycle_id"] is None
    assert not ActiveLearningCycle.objects.exists()  # nothing written before the job runs

    run_worker()

    job = api_for(setup["scientist"]).get(accepted["status_url"]).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "select" and job["percent"] == 100
    cycle = ActiveLearningCycle.objects.get(pk=job["result"]["cycle_id"])
    assert cycle.created_by == setup["lead"] and cycle.model == model
    assert job["result"]["items"] == cycle.items_selected == 12
    assert job["result"]["pool_size"] == preview["pool_size"]
    queued = LabelQueueItem.objects.filter(cycle=cycle).values_list("compound_id", flat=True)
    assert sorted(queued) == sorted(c["compound"]["id"] for c in preview["candidates"])


def test_a_selection_the_job_refuses_fails_it_with_the_reason_and_opens_nothing(setup, api_for, run_worker):  # type: ignore[no-untyped-def]
    body = {"model": setup["model"].pk, "strategy": "uncertainty", "batch_size": 5, "background": True,
            "params": {"min_uncertainty": 1e9}}  # filters out every compound
    response = api_for(setup["lead"]).post(SELECT, body, format="json")
    assert response.status_code == 202
    run_worker()
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.status == "failed"
    assert "picked no compound" in job.error and "field: params" in job.error
    assert not ActiveLearningCycle.objects.exists() and not LabelQueueItem.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"preview": True}, "background"),
        ({"pool": {"kind": "smiles", "smiles": ["CCO"]}}, "background"),
        ({"batch_size": 0}, "batch_size"),
        ({"strategy": "nonsense"}, "strategy"),
    ],
)
def test_a_background_request_that_cannot_work_is_a_400_at_once(setup, api_for, extra, field):  # type: ignore[no-untyped-def]
    body = {"model": setup["model"].pk, "background": True, **extra}
    response = api_for(setup["lead"]).post(SELECT, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Job.objects.exists()


def test_only_leads_start_a_background_selection(setup, api_for):  # type: ignore[no-untyped-def]
    response = api_for(setup["scientist"]).post(SELECT, {"model": setup["model"].pk, "background": True}, format="json")
    assert response.status_code == 403
    with pytest.raises(Exception, match="Only leads"):
        services.cycle_select_start(model=setup["model"], user=setup["scientist"], pool=PoolSpec())
    assert not Job.objects.exists()


def test_the_page_polls_the_job_and_then_opens_the_new_cycles_queue(setup, client_for, run_worker):  # type: ignore[no-untyped-def]
    client = client_for(setup["lead"])
    page = client.post("/cycles/select/", {
        "model": setup["model"].pk, "strategy": "uncertainty", "batch_size": 6, "batch": "top", "pool": "all",
        "action": "background",
    })
    assert page.status_code == 200, page.content.decode()[:2000]
    job = Job.objects.get(kind="select")
    html = page.content.decode()
    assert "Selecting in the background" in html and f"/cycles/jobs/{job.pk}/progress/" in html
    waiting = client.get(f"/cycles/jobs/{job.pk}/progress/")
    assert waiting.status_code == 200 and "HX-Redirect" not in waiting

    run_worker()

    done = client.get(f"/cycles/jobs/{job.pk}/progress/")
    assert done.status_code == 286  # htmx stops polling
    cycle = ActiveLearningCycle.objects.get()
    assert done["HX-Redirect"] == f"/queue/?cycle={cycle.pk}&model={cycle.model_id}"
    assert LabelQueueItem.objects.filter(cycle=cycle).count() == 6


def test_redis_down_is_a_503_and_the_job_says_nothing_started(setup, api_for, settings):  # type: ignore[no-untyped-def]
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6390/0", "DEFAULT_TIMEOUT": 60}}
    response = api_for(setup["lead"]).post(SELECT, {"model": setup["model"].pk, "background": True}, format="json")
    assert response.status_code == 503, response.content
    assert "unreachable" in response.json()["detail"]
    job = Job.objects.get()
    assert job.status == "failed" and "nothing was started" in job.error
    assert not ActiveLearningCycle.objects.exists()
