"""Select, cycles, retrain, stats, models and jobs over HTTP with a real (small) model."""

from __future__ import annotations

from typing import Any

import pytest

from cycles.models import ActiveLearningCycle, Job
from labeling.models import LabelQueueItem

AL = "/api/active-learning"


@pytest.mark.django_db
def test_preview_writes_nothing_and_select_creates_a_cycle_with_its_items(api_for: Any, trained: dict[str, Any]) -> None:
    client = api_for(trained["lead"])
    model = trained["model"]
    preview = client.post(f"{AL}/select/", {"model": model.pk, "strategy": "hybrid", "batch_size": 4, "preview": True,
                                            "params": {"weights": {"uncertainty": 1, "margin": 0, "applicability": 0}}}, format="json")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    assert body["preview"] is True and body["cycle"] is None and body["items"] == []
    assert [c["rank"] for c in body["candidates"]] == [1, 2, 3, 4]
    assert "uncertainty" in body["candidates"][0]["score_components"]
    assert not ActiveLearningCycle.objects.exists()

    created = client.post(f"{AL}/select/", {"model": model.pk, "batch_size": 5, "random_state": 1,
                                            "pool": {"kind": "dataset", "dataset_id": _pool_dataset_id(trained)}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["cycle"]["cycle_number"] == 1 and body["cycle"]["status"] == "labeling"
    assert len(body["items"]) == 5 and {i["cycle"] for i in body["items"]} == {body["cycle"]["id"]}

    listed = client.get(f"{AL}/cycles/", {"model": model.pk}).json()
    assert [c["id"] for c in listed["results"]] == [body["cycle"]["id"]]
    assert client.get(f"{AL}/cycles/", {"model": 10**9}).json()["count"] == 0


def _pool_dataset_id(trained: dict[str, Any]) -> int:
    from compounds.models import Dataset

    return Dataset.objects.get(name="pool").pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"strategy": "nope"}, "strategy"),
        ({"model": 10**9}, "model"),
        ({"params": {"weights": {"uncertainty": -1}}, "strategy": "hybrid"}, "params.weights"),
        ({"params": {"colour": 1}}, "params.colour"),
        ({"pool": {"kind": "dataset"}}, "pool.dataset_id"),
        ({"pool": {"kind": "dataset", "dataset_id": 987654}}, "pool.dataset_id"),
        ({"pool": {"kind": "smiles", "smiles": ["nonsense"]}}, "pool"),
        ({"pool": {"substructure": "C("}}, "pool.substructure"),
        ({"pool": {"substructure": "C" * 1001}}, "pool.substructure"),
        ({"preview": "maybe"}, "preview"),
        ({"strategy": "variance_reduction", "params": {"noise": -1}}, "params.noise"),
        ({"strategy": "variance_reduction", "params": {"landmarks": "all"}}, "params.landmarks"),
        ({"strategy": "uncertainty", "params": {"warmup": {"strategy": "variance_reduction", "until_labeled": 10**6,
                                                           "params": {"uncertainty_power": -2}}}}, "params.warmup.uncertainty_power"),
    ],
)
def test_bad_select_payloads_are_400_naming_the_field(api_for: Any, trained: dict[str, Any], payload: dict[str, Any], field: str) -> None:
    body = {"model": trained["model"].pk, "batch_size": 3, **payload}
    response = api_for(trained["lead"]).post(f"{AL}/select/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not ActiveLearningCycle.objects.exists()


@pytest.mark.django_db
def test_retrain_is_refused_below_the_threshold_then_202_then_409(
    api_for: Any, trained: dict[str, Any], rq_queue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api_for(trained["lead"])
    cycle_id = client.post(f"{AL}/select/", {"model": trained["model"].pk, "batch_size": 6}, format="json").json()["cycle"]["id"]
    items = LabelQueueItem.objects.filter(cycle_id=cycle_id)
    sci = api_for(trained["scientist"])
    for item in items[:3]:
        assert sci.post(f"{AL}/queue/{item.pk}/label/", {"value": trained["truth"][item.compound_id]}, format="json").status_code == 200
    low = client.post(f"{AL}/cycles/{cycle_id}/retrain/", {}, format="json")
    assert low.status_code == 400 and low.json()["field"] == "min_new_labels" and low.json()["new_labels"] == 3
    # The test transaction never commits: run the deferred enqueue so the job really is on RQ.
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(f"{AL}/cycles/{cycle_id}/retrain/", {"min_new_labels": 3}, format="json")
    assert accepted.status_code == 202, accepted.content
    assert len(rq_queue) == 1
    job_id = accepted.json()["job_id"]
    assert accepted.json()["status_url"] == f"/api/jobs/{job_id}/"
    again = client.post(f"{AL}/cycles/{cycle_id}/retrain/", {"min_new_labels": 0}, format="json")
    assert again.status_code == 409 and "already training" in again.json()["detail"]
    assert client.post(f"{AL}/cycles/{cycle_id}/retry/").status_code == 409
    assert client.post(f"{AL}/cycles/not-a-uuid/retrain/", {}, format="json").status_code == 404
    job = api_for(trained["scientist"]).get(f"/api/jobs/{job_id}/").json()
    assert (job["kind"], job["status"]) == ("retrain", "queued")
    assert client.get("/api/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_retrain_with_redis_down_is_503_and_changes_nothing(api_for: Any, trained: dict[str, Any], settings: Any) -> None:
    client = api_for(trained["lead"])
    cycle_id = client.post(f"{AL}/select/", {"model": trained["model"].pk, "batch_size": 2}, format="json").json()["cycle"]["id"]
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6390/0", "DEFAULT_TIMEOUT": 60}}
    response = client.post(f"{AL}/cycles/{cycle_id}/retrain/", {"min_new_labels": 0}, format="json")
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]
    assert ActiveLearningCycle.objects.get(pk=cycle_id).status == "labeling"


@pytest.mark.django_db
def test_models_list_detail_versions_and_predict(api_for: Any, trained: dict[str, Any], viewer: Any, django_assert_max_num_queries: Any) -> None:
    client = api_for(viewer)
    model = trained["model"]
    with django_assert_max_num_queries(4):
        listed = client.get("/api/models/").json()
    assert listed["results"][0]["id"] == model.pk and "rmse" in listed["results"][0]["metrics"]
    detail = client.get(f"/api/models/{model.pk}/").json()
    assert detail["validation_set"] == model.validation_set_id and detail["status"] == "active"
    assert [v["version"] for v in client.get(f"/api/models/{model.pk}/versions/").json()] == [1]
    assert client.get("/api/models/abc/").status_code == 404
    pred = client.post(f"/api/models/{model.pk}/predict/", {"smiles": ["CCO", "nonsense"]}, format="json").json()
    ok, bad = pred["results"]
    assert ok["prediction"] is not None and ok["uncertainty"] >= 0 and 0 <= ok["applicability_distance"] <= 1
    cal = model.metrics["uncertainty_calibration"]  # the spread calibrated on out-of-bag errors
    assert ok["predictive_std"] == pytest.approx((cal["scale"] * ok["uncertainty"] ** 2 + cal["noise"]) ** 0.5)
    assert bad["prediction"] is None and bad["error"]
    by_id = client.post(f"/api/models/{model.pk}/predict/", {"compound_ids": [trained["pool_ids"][0], 10**12]}, format="json").json()
    assert by_id["results"][0]["compound_id"] == trained["pool_ids"][0] and by_id["results"][1]["error"] == "no such compound"
    both = client.post(f"/api/models/{model.pk}/predict/", {}, format="json")
    assert both.status_code == 400 and both.json()["field"] == "smiles"
    stats = client.get(f"{AL}/stats/{model.pk}/").json()
    assert stats["primary_metric"] == "rmse" and stats["total_cycles"] == 0
    assert client.get(f"{AL}/stats/0/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_whole_cycle_driven_only_over_http_with_a_token(api_for: Any, trained: dict[str, Any], run_worker: Any) -> None:
    lead, sci = api_for(trained["lead"]), api_for(trained["scientist"])
    model_id = trained["model"].pk
    selected = lead.post(f"{AL}/select/", {"model": model_id, "strategy": "uncertainty", "batch_size": 8}, format="json")
    assert selected.status_code == 201
    cycle_id = selected.json()["cycle"]["id"]
    for _ in range(5):
        item = sci.post(f"{AL}/queue/claim-next/", {"model": model_id}, format="json").json()["item"]
        value = trained["truth"][item["compound"]["id"]]
        assert sci.post(f"{AL}/queue/{item['id']}/label/", {"value": value, "source": "experimental"}, format="json").status_code == 200
    accepted = lead.post(f"{AL}/cycles/{cycle_id}/retrain/", {"min_new_labels": 5}, format="json")
    assert accepted.status_code == 202
    run_worker()

    job = sci.get(accepted.json()["status_url"]).json()
    assert (job["status"], job["percent"]) == ("succeeded", 100), job["error"]
    stats = sci.get(f"{AL}/stats/{model_id}/").json()
    row = stats["cycles"][0]
    assert (row["status"], row["model_version"], row["result_version"], row["items_labeled"]) == ("complete", 1, 2, 5)
    assert row["primary_before"] is not None and row["primary_after"] is not None
    assert row["metrics_before"]["n"] == row["metrics_after"]["n"] == len(trained["validation_ids"])
    assert stats["active_version"]["version"] == 2
    assert [p["version"] for p in stats["learning_curve"]] == [1, 2]
    versions = sci.get(f"/api/models/{model_id}/versions/").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "active")]
    assert sci.get(f"{AL}/queue/", {"status": "archived"}).json()["count"] == 5
    assert Job.objects.get().status == "succeeded"
    # An integrator still holding v1's id is told where to go, by select as by claim-next.
    for url, body in ((f"{AL}/select/", {"model": model_id, "batch_size": 2}), (f"{AL}/queue/claim-next/", {"model": model_id})):
        stale = (lead if "select" in url else sci).post(url, body, format="json")
        assert stale.status_code == 409 and stale.json()["active_model"] == stats["active_version"]["id"], stale.content


@pytest.mark.django_db
def test_select_within_a_series(api_for: Any, trained: dict[str, Any]) -> None:
    from rdkit import Chem

    body = {"model": trained["model"].pk, "batch_size": 3, "strategy": "uncertainty",
            "pool": {"kind": "all", "substructure": "c1ccc2ccccc2c1"}}
    response = api_for(trained["lead"]).post(f"{AL}/select/", body, format="json")
    assert response.status_code == 201, response.content
    ring = Chem.MolFromSmarts("c1ccc2ccccc2c1")
    smiles = [item["compound"]["canonical_smiles"] for item in response.json()["items"]]
    assert len(smiles) == 3 and all(Chem.MolFromSmiles(s).HasSubstructMatch(ring) for s in smiles)
    assert ActiveLearningCycle.objects.get().pool_description == "all unlabeled compounds containing c1ccc2ccccc2c1"


@pytest.mark.django_db
def test_a_preview_of_pasted_smiles_writes_nothing(api_for: Any, trained: dict[str, Any]) -> None:
    from compounds.models import Compound

    before = Compound.objects.count()
    body = {"model": trained["model"].pk, "batch_size": 2, "preview": True, "strategy": "uncertainty",
            "pool": {"kind": "smiles", "smiles": ["CCCCCCCCCCO", "c1ccc(O)cc1CCCN", "nonsense"]}}
    response = api_for(trained["lead"]).post(f"{AL}/select/", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert Compound.objects.count() == before
    assert data["cycle"] is None and [e["row"] for e in data["pool_errors"]] == [3]
    assert [(c["registered"], c["compound"]["id"]) for c in data["candidates"]] == [(False, None), (False, None)]


@pytest.mark.django_db
def test_listed_compounds_left_out_of_the_pool_are_named_with_the_reason(api_for: Any, trained: dict[str, Any]) -> None:
    from compounds.models import Compound, Measurement

    model = trained["model"]
    client = api_for(trained["lead"])
    measured = (Measurement.objects.filter(assay=model.assay).exclude(compound_id__in=trained["validation_ids"])
                .values_list("compound_id", flat=True).first())
    free = trained["pool_ids"][:2]
    ids = [free[0], trained["validation_ids"][0], 987_654_321, measured, free[1]]
    body = {"model": model.pk, "batch_size": 5, "preview": True, "pool": {"kind": "compounds", "compound_ids": ids}}
    response = client.post(f"{AL}/select/", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["pool_size"] == 2 and {c["compound"]["id"] for c in data["candidates"]} == set(free)
    reasons = {e["row"]: e["reason"] for e in data["pool_errors"]}
    assert reasons[2].startswith("in the validation set") and reasons[3] == "no compound with this id"
    assert reasons[4].startswith("already measured") and set(reasons) == {2, 3, 4}
    # Pasted SMILES: the line and its text, for a measured structure as for an unreadable one.
    smiles = Compound.objects.get(pk=measured).smiles
    body = {"model": model.pk, "batch_size": 5, "preview": True,
            "pool": {"kind": "smiles", "smiles": ["CCCCCCCCCCCCCCCCO", "not-a-smiles", smiles]}}
    data = client.post(f"{AL}/select/", body, format="json").json()
    errors = {e["row"]: e for e in data["pool_errors"]}
    assert set(errors) == {2, 3} and errors[3]["input"] == smiles and errors[3]["reason"].startswith("already measured")
    assert errors[3]["compound_id"] == measured and len(data["candidates"]) == 1
    # Queued for real: the same reasons come back with the new cycle.
    body["preview"] = False
    created = client.post(f"{AL}/select/", body, format="json")
    assert created.status_code == 201 and {e["row"] for e in created.json()["pool_errors"]} == {2, 3}
