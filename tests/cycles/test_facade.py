"""The spec's ActiveLearningService, driven in the spec's order: select → queue → label → retrain → stats."""

from __future__ import annotations

from typing import Any

import pytest

from compounds.models import Compound
from config.exceptions import Conflict, ValidationFailed
from cycles.models import ActiveLearningCycle
from cycles.services.facade import ActiveLearningService
from labeling.models import LabelQueueItem
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings: Any, tmp_path: Any, lead: Any, scientist: Any) -> dict[str, Any]:
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup(labeled=40, pool=40, validation=20)
    data.update(lead=lead, scientist=scientist, service=ActiveLearningService(data["model"].pk, user=lead))
    return data


def test_the_spec_flow_selects_without_writing_then_queues_labels_and_retrains(
    setup: dict[str, Any], rq_queue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    service = setup["service"]
    picked = service.select_samples(strategy="hybrid", batch_size=12)
    assert len(picked) == 12 and all(p["registered"] and p["uncertainty"] is not None for p in picked)
    assert not ActiveLearningCycle.objects.exists() and not LabelQueueItem.objects.exists()  # a preview

    assert service.add_to_queue([p["compound_id"] for p in picked], selection_batch=1) == 12
    cycle = ActiveLearningCycle.objects.get()
    assert (cycle.cycle_number, cycle.selection_strategy, cycle.items_selected) == (1, "hybrid", 12)
    items = LabelQueueItem.objects.filter(cycle=cycle)
    assert {i.compound_id for i in items} == {p["compound_id"] for p in picked}
    assert all(i.prediction is not None and i.score_components for i in items)  # each says why it is there

    pending = service.get_pending_items(user_id=setup["scientist"].pk, limit=50)
    assert len(pending) == 12
    for item in pending[:10]:
        labeled = service.submit_label(item.pk, setup["truth"][item.compound_id], "experimental", "high", None,
                                       setup["scientist"].pk)
        assert labeled.status == "labeled"
    # The test transaction never commits: run the deferred enqueue so the job really is on RQ.
    with django_capture_on_commit_callbacks(execute=True):
        job_id = service.trigger_retrain(cycle.pk)
    assert rq_queue.job_ids == [str(job_id)]
    stats = service.get_cycle_stats()
    assert stats["cycles"][0]["items_labeled"] == 10 and stats["cycles"][0]["status"] == "training"


def test_a_pasted_pool_is_queued_by_smiles_and_registered_then(setup: dict[str, Any]) -> None:
    service = setup["service"]
    new = ["CCCCCCCCCCCCCCCCO", "OC(=O)c1ccccc1Cl"]
    picked = service.select_samples(pool=new, strategy="uncertainty", batch_size=2)
    assert [p["registered"] for p in picked] == [False, False] and not Compound.objects.filter(smiles__in=new).exists()
    assert service.add_to_queue([p["smiles"] for p in picked]) == 2
    assert LabelQueueItem.objects.filter(compound__smiles__in=[p["smiles"] for p in picked]).count() == 2


def test_the_facade_refuses_what_it_cannot_honour(setup: dict[str, Any]) -> None:
    service = setup["service"]
    with pytest.raises(ValidationFailed) as err:
        service.select_samples(exclude_labeled=False)
    assert err.value.extra["field"] == "exclude_labeled"
    ids = [p["compound_id"] for p in service.select_samples(batch_size=3)]
    with pytest.raises(Conflict, match="next batch is 1"):
        service.add_to_queue(ids, selection_batch=7)
    assert not ActiveLearningCycle.objects.exists() and not LabelQueueItem.objects.exists()
