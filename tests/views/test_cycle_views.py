"""Cycle history (metrics, progress polling, retrain/retry) and sample selection pages."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cycles.models import ActiveLearningCycle, Job
from tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db
HISTORY = reverse("cycles:history")


@pytest.fixture
def complete_cycle(model, cycle):  # type: ignore[no-untyped-def]
    model.status, model.metrics, model.training_size, model.trained_at = "superseded", {"rmse": 0.7, "r2": 0.85}, 60, timezone.now()
    model.save()
    v2 = MLModelFactory(name=model.name, assay=model.assay, validation_set=model.validation_set, version=2,
                        status="active", metrics={"rmse": 0.6, "r2": 0.8}, training_size=70,
                        trained_at=timezone.now(), parent=model)
    ActiveLearningCycle.objects.filter(pk=cycle.pk).update(
        status="complete", result_model=v2, metrics_before={"rmse": 0.7, "r2": 0.85},
        metrics_after={"rmse": 0.6, "r2": 0.8}, items_labeled=4, items_skipped=1,
    )
    return v2


def test_history_shows_before_after_deltas_signed_by_direction(client_for, viewer, complete_cycle):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(HISTORY).content.decode()
    assert "Cycle #1" in body and "4 labeled" in body and "1 skipped" in body
    # RMSE fell (better, green); R² fell (worse, red); in words too, not by colour alone.
    assert '<span class="delta better">-0.1<span class="sr-only"> (better)</span></span>' in body
    assert '<span class="delta worse">-0.05<span class="sr-only"> (worse)</span></span>' in body
    assert "Learning curve" in body and "RMSE against training labels" in body


def test_history_picks_the_lineage_from_the_select_and_serves_htmx_fragments(client_for, viewer, model, cycle):  # type: ignore[no-untyped-def]
    other = MLModelFactory(name="Permeability")
    c = client_for(viewer)
    assert "Cycle #1" not in c.get(HISTORY, {"model": other.pk}).content.decode()
    fragment = c.get(HISTORY, {"model": model.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'id="timeline"' in fragment and "Cycle #1" in fragment


def test_history_without_models_and_unknown_models(client_for, viewer):  # type: ignore[no-untyped-def]
    c = client_for(viewer)
    assert "No models yet." in c.get(HISTORY).content.decode()
    assert c.get(HISTORY, {"model": 999999}).status_code == 404


def test_only_leads_see_retrain_and_retry_buttons(client_for, viewer, scientist, lead, model, cycle):  # type: ignore[no-untyped-def]
    ActiveLearningCycle.objects.create(model=model, cycle_number=2, selection_strategy="random", batch_size=5,
                                       status="failed", error="KeyError: boom")
    for user in (viewer, scientist):
        body = client_for(user).get(HISTORY).content.decode()
        assert "KeyError: boom" in body
        assert ">Retrain</button>" not in body and ">Retry</button>" not in body
    body = client_for(lead).get(HISTORY).content.decode()
    assert ">Retrain</button>" in body and ">Retry</button>" in body


def test_retrain_below_the_threshold_is_a_message(client_for, lead, cycle):  # type: ignore[no-untyped-def]
    response = client_for(lead).post(reverse("cycles:retrain", args=[cycle.pk]), follow=True)
    assert "0 new or corrected labels since" in response.content.decode() and "at least 10" in response.content.decode()
    cycle.refresh_from_db()
    assert cycle.status == "labeling"


def test_retry_of_a_cycle_that_did_not_fail_is_a_message(client_for, lead, cycle):  # type: ignore[no-untyped-def]
    body = client_for(lead).post(reverse("cycles:retry", args=[cycle.pk]), follow=True).content.decode()
    assert "Only failed cycles can be retried" in body


@pytest.mark.parametrize("role", ["viewer", "scientist"])
@pytest.mark.parametrize("name", ["cycles:retrain", "cycles:retry"])
def test_only_leads_may_retrain_or_retry(request, client_for, role, name, cycle):  # type: ignore[no-untyped-def]
    assert client_for(request.getfixturevalue(role)).post(reverse(name, args=[cycle.pk])).status_code == 403


def test_unknown_cycles_and_jobs_are_404(client_for, lead):  # type: ignore[no-untyped-def]
    missing = "00000000-0000-0000-0000-000000000000"
    c = client_for(lead)
    assert c.post(reverse("cycles:retrain", args=[missing])).status_code == 404
    assert c.get(reverse("cycles:job_progress", args=[missing])).status_code == 404


def test_a_training_cycle_polls_its_job_until_it_stops(client_for, viewer, cycle):  # type: ignore[no-untyped-def]
    job = Job.objects.create(kind="retrain", status="running", stage="training ensemble", percent=42,
                             heartbeat_at=timezone.now(), params={"cycle_id": str(cycle.pk)})
    ActiveLearningCycle.objects.filter(pk=cycle.pk).update(status="training", job=job)
    c = client_for(viewer)
    body = c.get(HISTORY).content.decode()
    assert reverse("cycles:job_progress", args=[job.pk]) in body and 'hx-trigger="every 1s"' in body
    running = c.get(reverse("cycles:job_progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert running.status_code == 200 and "42%" in running.content.decode() and "training ensemble" in running.content.decode()
    Job.objects.filter(pk=job.pk).update(status="succeeded", percent=100, stage="done")
    done = c.get(reverse("cycles:job_progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx stops polling
    assert done["HX-Refresh"] == "true"


def test_a_dead_worker_shows_as_a_failed_cycle(client_for, viewer, cycle):  # type: ignore[no-untyped-def]
    stale = timezone.now() - timedelta(minutes=30)
    job = Job.objects.create(kind="retrain", status="running", heartbeat_at=stale, started_at=stale,
                             params={"cycle_id": str(cycle.pk)})
    ActiveLearningCycle.objects.filter(pk=cycle.pk).update(status="training", job=job)
    body = client_for(viewer).get(HISTORY).content.decode()
    cycle.refresh_from_db()
    assert cycle.status == "failed"
    assert "The worker stopped without reporting" in body


def test_a_converged_lineage_says_so(client_for, viewer, model):  # type: ignore[no-untyped-def]
    for n in (1, 2):
        ActiveLearningCycle.objects.create(model=model, cycle_number=n, selection_strategy="hybrid", batch_size=5,
                                           status="complete", metrics_before={"rmse": 0.5}, metrics_after={"rmse": 0.499},
                                           completed_at=timezone.now())
    assert "Converged." in client_for(viewer).get(HISTORY).content.decode()


def test_a_retrain_that_made_the_model_worse_is_not_convergence(client_for, viewer, model):  # type: ignore[no-untyped-def]
    now = timezone.now()
    # Cycle 1 finished last (a late retrain of an old cycle) and made RMSE much worse.
    for n, after, done in ((1, 0.80, now), (2, 0.499, now - timedelta(hours=2)), (3, 0.498, now - timedelta(hours=1))):
        ActiveLearningCycle.objects.create(model=model, cycle_number=n, selection_strategy="hybrid", batch_size=5,
                                           status="complete", metrics_before={"rmse": 0.5}, metrics_after={"rmse": after},
                                           completed_at=done)
    assert "Converged." not in client_for(viewer).get(HISTORY).content.decode()


# --- Selection ------------------------------------------------------------------------

SELECTION = reverse("cycles:selection")


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("scientist", 403), ("lead", 200)])
def test_only_leads_reach_selection(request, client_for, role, status, model):  # type: ignore[no-untyped-def]
    c = client_for(request.getfixturevalue(role))
    assert c.get(SELECTION).status_code == status
    posted = c.post(SELECTION, {"model": model.pk, "strategy": "hybrid", "batch_size": 5, "pool": "all", "batch": "top"})
    assert posted.status_code == (403 if status == 403 else 400)  # the lead's model has no artifact


def test_the_form_groups_strategies_by_goal_and_filters_by_task(client_for, lead, model, class_model):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    regression = c.get(SELECTION, {"model": model.pk}).content.decode()
    assert 'optgroup label="Improve the model"' in regression and 'optgroup label="Find the best compounds"' in regression
    assert 'value="ucb"' in regression and 'value="bald"' not in regression
    classification = c.get(SELECTION, {"model": class_model.pk}).content.decode()
    assert 'value="bald"' in classification and 'value="ucb"' not in classification


def test_bad_selection_input_is_shown_not_saved(client_for, lead, model):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    data = {"model": model.pk, "strategy": "hybrid", "batch_size": 0, "pool": "dataset", "batch": "top", "action": "preview"}
    response = c.post(SELECTION, data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose the dataset to select from." in body and "greater than or equal to 1" in body
    fragment = c.post(SELECTION, {**data, "pool": "list", "batch_size": 5}, HTTP_HX_REQUEST="true").content.decode()
    assert "Paste at least one SMILES" in fragment and "<html" not in fragment
    assert not ActiveLearningCycle.objects.exists()


def test_selection_with_a_model_that_cannot_score_is_a_message(client_for, lead, model):  # type: ignore[no-untyped-def]
    data = {"model": model.pk, "strategy": "hybrid", "batch_size": 5, "pool": "all", "batch": "top", "action": "queue"}
    response = client_for(lead).post(SELECTION, data)
    assert response.status_code == 400
    assert "has no trained artifact yet" in response.content.decode()
