"""Every HTML view and admin × anonymous / no role / viewer / scientist / lead / superuser; CSRF on every POST."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from cycles.models import ActiveLearningCycle, Job
from tests.factories import LabelQueueItemFactory, MLModelFactory, UserFactory

pytestmark = pytest.mark.django_db

# "norole": signed in, in no role group; reads nothing, as over the API.
ROLES = ["anonymous", "norole", "viewer", "scientist", "lead", "superuser"]
# Minimum role each page needs (None = the viewer role).
GET_PAGES = [
    ("labeling:queue", None),
    ("labeling:export", None),
    ("labeling:labeling", None),
    ("labeling:item", None),
    ("cycles:history", None),
    ("cycles:job_progress", None),
    ("cycles:selection", "lead"),
    ("compounds:list", None),
    ("compounds:export", None),
    ("compounds:detail", None),
    ("compounds:structure", None),
    ("compounds:similar", None),
    ("compounds:import", "lead"),
    ("mlmodels:list", None),
    ("mlmodels:detail", None),
    ("mlmodels:metrics_json", None),
    ("mlmodels:explain", None),
    ("mlmodels:compound_predictions", None),
    ("admin:index", "lead"),
    ("admin:labeling_labelqueueitem_changelist", "lead"),
    ("admin:labeling_auditevent_changelist", "lead"),
]
POST_ACTIONS = [
    ("labeling:bulk", "lead"),
    ("labeling:submit", "scientist"),
    ("labeling:skip", "scientist"),
    # Scientists reach these; the services then allow only their own label or skip.
    ("labeling:correct", "scientist"),
    ("labeling:unskip", "scientist"),
    ("cycles:retrain", "lead"),
    ("cycles:retry", "lead"),
    ("cycles:selection", "lead"),
    ("compounds:import", "lead"),
]
RANK = {"anonymous": -2, "norole": -1, "viewer": 0, "scientist": 1, "lead": 2, "superuser": 3}


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    item = LabelQueueItemFactory(model=model)
    job = Job.objects.create(kind="retrain", status="failed")
    cycle = ActiveLearningCycle.objects.create(model=model, cycle_number=1, selection_strategy="random", batch_size=1, job=job)
    item.cycle = cycle
    item.save()
    return {"model": model, "item": item, "cycle": cycle, "job": job}


def _url(name: str, w: dict) -> str:  # type: ignore[type-arg]
    args = {
        "labeling:item": [w["item"].pk], "labeling:submit": [w["item"].pk], "labeling:skip": [w["item"].pk],
        "labeling:correct": [w["item"].pk], "labeling:unskip": [w["item"].pk],
        "cycles:job_progress": [w["job"].pk], "cycles:retrain": [w["cycle"].pk], "cycles:retry": [w["cycle"].pk],
        "compounds:detail": [w["item"].compound_id], "compounds:structure": [w["item"].compound_id],
        "compounds:similar": [w["item"].compound_id],
        "mlmodels:detail": [w["model"].pk], "mlmodels:metrics_json": [w["model"].pk],
        "mlmodels:compound_predictions": [w["item"].compound_id], "mlmodels:artifact": [w["model"].pk],
        "mlmodels:explain": [w["model"].pk, w["item"].compound_id],
    }.get(name, [])
    return reverse(name, args=args)


def _client(role: str) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    user = UserFactory(username=f"matrix-{role}", is_superuser=role == "superuser", is_staff=role in ("lead", "superuser"))
    if role in ("viewer", "scientist", "lead"):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


def _allowed(role: str, needs: str | None) -> bool:
    return role != "anonymous" and RANK[role] >= RANK[needs or "viewer"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "needs"), GET_PAGES)
def test_get_pages(world, role, name, needs):  # type: ignore[no-untyped-def]
    response = _client(role).get(_url(name, world))
    if role == "anonymous":
        assert response.status_code == 302 and "login" in response["Location"]
    elif _allowed(role, needs):
        assert response.status_code in (200, 286, 302), response.status_code
        if response.status_code == 302:
            assert "login" not in response["Location"]
    elif name.startswith("admin:"):
        assert response.status_code == 302 and "login" in response["Location"]
    else:
        assert response.status_code == 403


def test_a_user_without_a_role_gets_the_403_page_everywhere(world):  # type: ignore[no-untyped-def]
    client = _client("norole")
    for name in [n for n, _ in GET_PAGES if not n.startswith("admin:")] + ["mlmodels:artifact"]:
        response = client.get(_url(name, world))
        assert response.status_code == 403, name
    assert "needs the viewer role" in client.get(reverse("compounds:list")).content.decode()


def test_the_403_page_sends_a_user_to_the_one_who_can_change_roles(world):  # type: ignore[no-untyped-def]
    body = _client("norole").get(reverse("compounds:list")).content.decode()
    assert "an administrator can change your role" in body and "a lead or an administrator" not in body
    # Not a lead: a user's groups are read-only for leads in admin (README, "Accounts").
    lead = _client("lead")
    norole = User.objects.get(username="matrix-norole")
    url = reverse("admin:auth_user_change", args=[norole.pk])
    assert lead.get(url).status_code == 200 and 'name="groups"' not in lead.get(url).content.decode()
    assert lead.post(url, {"username": norole.username, "groups": [Group.objects.get(name="viewer").pk]}).status_code == 403
    assert not norole.groups.exists()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "needs"), POST_ACTIONS)
def test_post_actions(world, role, name, needs):  # type: ignore[no-untyped-def]
    response = _client(role).post(_url(name, world), {})
    if role == "anonymous":
        assert response.status_code == 302 and "login" in response["Location"]
    elif _allowed(role, needs):
        assert response.status_code not in (401, 403) and response.status_code < 500
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(("name", "needs"), POST_ACTIONS)
def test_every_post_is_refused_without_a_csrf_token(world, name, needs):  # type: ignore[no-untyped-def]
    user = UserFactory(username="csrf-lead", is_superuser=True, is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(_url(name, world), {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_an_htmx_post_with_the_header_token_passes_csrf(world):  # type: ignore[no-untyped-def]
    user = UserFactory(username="csrf-lead2", is_superuser=True, is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(reverse("labeling:queue"))
    token = page.cookies["csrftoken"].value
    response = client.post(
        _url("labeling:skip", world), {}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code != 403
