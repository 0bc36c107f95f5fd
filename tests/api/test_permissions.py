"""The role matrix of every endpoint: anonymous → 401, too low a role → 403, else allowed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.models import ActiveLearningCycle, Job
from tests.factories import CompoundFactory, LabelQueueItemFactory

RANK = {None: -1, "viewer": 0, "scientist": 1, "lead": 2}

# (method, url template, body, minimum role). Templates use the ids of the `world` fixture.
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("post", "/api/active-learning/select/", {"model": "{model}", "batch_size": 1}, "lead"),
    ("get", "/api/active-learning/queue/", None, "viewer"),
    ("get", "/api/active-learning/queue/{item}/", None, "viewer"),
    ("post", "/api/active-learning/queue/{item}/label/", {"value": 1.5}, "scientist"),
    ("post", "/api/active-learning/queue/{item}/skip/", {}, "scientist"),
    ("post", "/api/active-learning/queue/{item}/assign/", {"user_id": None}, "lead"),
    # Scientists may correct (their own labels: the object check is in labeling tests); here a 409, not labeled.
    ("post", "/api/active-learning/queue/{item}/correct/", {"value": 1.0, "notes": "matrix"}, "scientist"),
    ("post", "/api/active-learning/queue/claim-next/", {}, "scientist"),
    ("get", "/api/active-learning/cycles/", None, "viewer"),
    ("post", "/api/active-learning/cycles/{cycle}/retrain/", {"min_new_labels": 0}, "lead"),
    ("post", "/api/active-learning/cycles/{cycle}/retry/", None, "lead"),
    ("get", "/api/active-learning/stats/{model}/", None, "viewer"),
    ("get", "/api/compounds/", None, "viewer"),
    ("post", "/api/compounds/", {"smiles": "CCN"}, "scientist"),
    ("get", "/api/compounds/{compound}/", None, "viewer"),
    ("post", "/api/compounds/import/", "multipart", "lead"),
    ("get", "/api/assays/", None, "viewer"),
    ("post", "/api/assays/", {"name": "new assay"}, "lead"),
    ("get", "/api/measurements/", None, "viewer"),
    ("post", "/api/measurements/", {"compound": "{compound}", "assay": "{assay}", "value": 2.0}, "scientist"),
    ("get", "/api/models/", None, "viewer"),
    ("get", "/api/models/{model}/", None, "viewer"),
    ("get", "/api/models/{model}/versions/", None, "viewer"),
    ("post", "/api/models/{model}/predict/", {"smiles": ["CCO"]}, "viewer"),
    ("get", "/api/jobs/{job}/", None, "viewer"),
]


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    item = LabelQueueItemFactory()
    model = item.model
    cycle = ActiveLearningCycle.objects.create(model=model, cycle_number=1, selection_strategy="uncertainty", batch_size=1)
    return {
        "model": model.pk,
        "assay": model.assay_id,
        "item": str(item.pk),
        "compound": item.compound_id,
        "cycle": str(cycle.pk),
        "job": str(Job.objects.create(kind="retrain").pk),
    }


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_the_matrix_covers_every_operation_of_the_schema(api_for: Any, viewer: Any) -> None:
    schema = api_for(viewer).get("/api/schema/", {"format": "json"}).json()["paths"]
    operations = {
        (method, path.replace("{item_id}", "{item}").replace("{cycle_id}", "{cycle}").replace("{model_id}", "{model}")
         .replace("{compound_id}", "{compound}").replace("{job_id}", "{job}"))
        for path, item in schema.items() if path != "/api/schema/"
        for method in item if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {(method, url) for method, url, _, _ in ENDPOINTS}


@pytest.mark.parametrize("role", [None, "viewer", "scientist", "lead"])
@pytest.mark.parametrize(("method", "url", "body", "needs"), ENDPOINTS, ids=[f"{m.upper()} {u}" for m, u, _, _ in ENDPOINTS])
def test_the_role_matrix(request: Any, world: dict[str, Any], api_for: Any, role: str | None, method: str, url: str, body: Any, needs: str) -> None:
    user = request.getfixturevalue(role) if role else None
    client = api_for(user)
    path = _fill(url, world)
    if body == "multipart":
        upload = SimpleUploadedFile("rows.smi", b"CCO ethanol\nCCCO propanol\n")
        response = client.post(path, {"file": upload, "dataset": "matrix"}, format="multipart")
    elif method == "post":
        response = client.post(path, _fill(body, world), format="json")
    else:
        response = client.get(path)

    if role is None:
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
    elif RANK[role] < RANK[needs]:
        assert response.status_code == 403, response.content
    else:
        assert response.status_code not in (401, 403), response.content
        assert response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")


def test_a_user_without_any_role_is_refused(db: Any, api_for: Any) -> None:
    from tests.factories import UserFactory

    client = api_for(UserFactory(username="nobody"))
    assert client.get("/api/compounds/").status_code == 403


def test_session_auth_works_too(viewer: Any, client_for: Any) -> None:
    CompoundFactory()
    assert client_for(viewer).get("/api/compounds/").status_code == 200


def test_schema_and_swagger_ui_are_served_offline(db: Any) -> None:
    from django.test import Client

    client = Client()
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "https://" not in page.split("<body")[0]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "scientist", "lead"])
def test_options_describes_every_endpoint_for_every_role(request: Any, api_for: Any, role: str) -> None:
    """OPTIONS was a 500 for users allowed to POST (no serializer_class on our views)."""
    from django.urls import get_resolver

    client = api_for(request.getfixturevalue(role))
    paths = ["/api/assays/", "/api/compounds/", "/api/measurements/", "/api/models/", "/api/compounds/import/",
             "/api/active-learning/select/", "/api/active-learning/queue/", "/api/active-learning/cycles/",
             "/api/active-learning/queue/claim-next/"]
    assert get_resolver()  # the URLconf loads
    for path in paths:
        response = client.options(path)
        # POST-only endpoints answer a role that may not use them with 403, like any method.
        assert response.status_code == 200 or (role != "lead" and response.status_code == 403), (path, response)
    posted = client.options("/api/assays/").json().get("actions", {})
    assert ("POST" in posted) == (role == "lead") and (not posted or "min_value" in posted["POST"])
