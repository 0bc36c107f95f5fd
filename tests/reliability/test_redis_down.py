"""Redis unreachable: writes that committed say so, pages render, only job starts are 503s.

Redis is both the cache (queue pages, drawings) and the job queue. A cache outage must
not turn a committed label, claim, selection or import into an error (the client would
retry and meet a 409 or a second cycle), and pages must still render from the database.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from compounds.models import Compound, Measurement
from cycles.models import ActiveLearningCycle, Job
from labeling.models import AuditEvent, LabelQueueItem
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db(transaction=True)
AL = "/api/active-learning"
DEAD = "redis://127.0.0.1:6390/0"  # nothing listens there


def _redis_goes_down(settings: Any) -> None:
    import django_rq

    settings.RQ_QUEUES = {"default": {"URL": DEAD, "DEFAULT_TIMEOUT": 60}}
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": DEAD, "KEY_PREFIX": "down"}}
    if hasattr(django_rq.queues.get_redis_connection, "cache_clear"):
        django_rq.queues.get_redis_connection.cache_clear()


def test_with_redis_down_writes_answer_truthfully_and_pages_render(
    settings: Any, tmp_path: Any, lead: Any, scientist: Any, api_for: Any
) -> None:
    from django.test import Client

    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup(labeled=40, pool=40, validation=20)
    model = data["model"]
    _redis_goes_down(settings)
    boss, sci = api_for(lead), api_for(scientist)

    selected = boss.post(f"{AL}/select/", {"model": model.pk, "batch_size": 11}, format="json")
    assert selected.status_code == 201, selected.content
    cycle_id = selected.json()["cycle"]["id"]
    assert ActiveLearningCycle.objects.count() == 1 and AuditEvent.objects.filter(action="select").count() == 1

    claimed = sci.post(f"{AL}/queue/claim-next/", {"model": model.pk}, format="json")
    assert claimed.status_code == 200, claimed.content
    assert LabelQueueItem.objects.get(pk=claimed.json()["item"]["id"]).status == "in_progress"
    for item in LabelQueueItem.objects.filter(cycle_id=cycle_id)[:10]:
        labeled = sci.post(f"{AL}/queue/{item.pk}/label/", {"value": data["truth"][item.compound_id]}, format="json")
        assert labeled.status_code == 200, labeled.content
    assert Measurement.objects.filter(queue_item__cycle_id=cycle_id).count() == 10

    # Starting a job is the one thing that needs the queue: a 503, and the cycle as it was.
    retrain = boss.post(f"{AL}/cycles/{cycle_id}/retrain/", {"min_new_labels": 0}, format="json")
    assert retrain.status_code == 503 and "unreachable" in retrain.json()["detail"]
    assert ActiveLearningCycle.objects.get(pk=cycle_id).status == "labeling"
    assert Job.objects.get().status == "failed"

    settings.CHEMLOOP_IMPORT_FOLLOWUPS = ["compounds.services.compound_patterns_backfill_enqueue"]
    upload = io.BytesIO(b"smiles,name\nCCCCCCCCCCCCCCO,tetradecanol\nc1ccc2ccccc2c1O,naphthol\n")
    upload.name = "two.csv"
    imported = boss.post("/api/compounds/import/", {"file": upload, "dataset": "while down"}, format="multipart")
    assert imported.status_code == 200, imported.content
    assert imported.json()["created"] == 2 and imported.json()["background_jobs_not_queued"] is True
    assert Compound.objects.filter(name__in=["tetradecanol", "naphthol"]).count() == 2

    # The web: log in with a password (sessions are in the database) and read the pages
    # that use the cache (queue pages, structure drawings, the model page).
    browser = Client()
    login = browser.post("/accounts/login/", {"username": scientist.username, "password": "pw-for-tests"})
    assert login.status_code == 302, login.content[:500]
    compound = Compound.objects.get(name="naphthol")
    for url in ("/queue/", f"/queue/?cycle={cycle_id}", f"/compounds/{compound.pk}/", f"/models/{model.pk}/", "/cycles/"):
        assert browser.get(url).status_code == 200, url
