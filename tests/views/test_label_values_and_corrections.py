"""Label values a model cannot use are refused at the door; leads correct labels; "Next"
walks down the queue; the Labeling tab keeps its model filter; admin registers compounds
through the chemistry like every import."""

import pytest
from django.urls import reverse

from compounds import services as compound_services
from compounds.models import Assay, Compound, Measurement
from config.exceptions import ValidationFailed
from labeling import services
from labeling.models import AuditEvent, QueueStatus
from tests.factories import AssayFactory, LabelQueueItemFactory, MLModelFactory

pytestmark = pytest.mark.django_db


def _item_url(item, name="item"):  # type: ignore[no-untyped-def]
    return reverse(f"labeling:{name}", args=[item.pk])


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1e39", "no larger than 1e+38"),
        (-1e299, "no larger than 1e+38"),
        ("1,5", "use a decimal point (e.g. 1.5), not a comma"),
        ("1_000", "not numeric"),
        ("١٢", "not numeric"),
        ("infinity", "not numeric"),
        ("nan", "not numeric"),
        ("0x10", "not numeric"),
    ],
)
def test_values_a_model_cannot_use_are_refused_naming_the_field(raw, message):  # type: ignore[no-untyped-def]
    assay = AssayFactory()
    with pytest.raises(ValidationFailed) as exc:
        compound_services.parse_measurement_value(assay, raw)
    assert message in exc.value.message
    assert exc.value.extra == {"field": "value"}


@pytest.mark.parametrize(("raw", "number"), [("-3.57", -3.57), (" +2 ", 2.0), (".5", 0.5), ("1e30", 1e30), (7, 7.0)])
def test_plain_numbers_are_read(raw, number):  # type: ignore[no-untyped-def]
    assert compound_services.parse_measurement_value(AssayFactory(), raw) == number


def test_an_assay_range_refuses_implausible_labels_everywhere(client_for, api_for, lead, scientist):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="logS range", units="log mol/L", min_value=-15.0, max_value=3.0)
    model = MLModelFactory(assay=assay)
    with pytest.raises(ValidationFailed, match=r"outside the plausible range of logS range \(-15 to 3 log mol/L\)"):
        compound_services.parse_measurement_value(assay, "15")
    assert compound_services.parse_measurement_value(assay, "3") == 3.0

    # The labeling form says so and keeps what was typed.
    item = LabelQueueItemFactory(model=model)
    body = client_for(scientist).post(
        _item_url(item, "submit"), {"value": "12", "source": "experimental", "confidence": "high", "notes": "from ELN"}
    ).content.decode()
    assert "outside the plausible range" in body and "from ELN" in body
    assert "· plausible -15 to 3 log mol/L" in body  # the range is shown before anyone types
    # The API answers 400 naming the field, and nothing is written.
    response = api_for(scientist).post(
        f"/api/active-learning/queue/{item.pk}/label/", {"value": -1e299}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "value"
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and not Measurement.objects.filter(assay=assay).exists()


def test_assay_ranges_over_the_api(api_for, lead, client_for):  # type: ignore[no-untyped-def]
    api = api_for(lead)
    huge = api.post("/api/assays/", {"name": "huge", "min_value": 1e39}, format="json")
    assert huge.status_code == 400 and huge.json()["field"] == "min_value"
    admin_add = client_for(lead).post(
        reverse("admin:compounds_assay_add"),
        {"name": "flipped", "task_type": "regression", "direction": "maximize", "classes": "[]", "min_value": "5",
         "max_value": "1"},
    )
    assert "The lowest plausible value must be below the highest." in admin_add.content.decode()
    bad = api.post("/api/assays/", {"name": "pIC50", "min_value": 12, "max_value": 2}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "max_value"
    bad = api.post(
        "/api/assays/", {"name": "cls", "task_type": "classification", "classes": ["a", "b"], "min_value": 0},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["field"] == "min_value"
    made = api.post("/api/assays/", {"name": "pIC50", "min_value": 2, "max_value": 12}, format="json")
    assert made.status_code == 201 and (made.json()["min_value"], made.json()["max_value"]) == (2.0, 12.0)
    assay = Assay.objects.get(name="pIC50")
    compound = Compound.objects.get(pk=api.post("/api/compounds/", {"smiles": "CCO"}, format="json").json()["id"])
    response = api.post(
        "/api/measurements/", {"compound": compound.pk, "assay": assay.pk, "value": 13}, format="json"
    )
    assert response.status_code == 400 and "plausible range" in response.json()["detail"]


# --- corrections -------------------------------------------------------------------------


def test_a_lead_corrects_a_label_on_the_page_and_the_history_shows_it(client_for, lead, scientist, other_scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory(model=MLModelFactory(assay=AssayFactory(name="logS c", units="log mol/L")))
    services.label_submit(item_id=item.pk, user=scientist, value="-35", notes="from the ELN")
    page = client_for(lead).get(_item_url(item)).content.decode()
    assert "Correct this label" in page
    assert "Correct this label" not in client_for(other_scientist).get(_item_url(item)).content.decode()
    refused = client_for(other_scientist).post(_item_url(item, "correct"), {"value": "-3.5", "notes": "x"}, follow=True)
    assert "Only the scientist who labeled it or a lead can correct this label" in refused.content.decode()
    assert client_for(_viewer()).post(_item_url(item, "correct"), {"value": "-3.5", "notes": "x"}).status_code == 403

    bad = client_for(lead).post(_item_url(item, "correct"), {"value": "-3,5", "notes": "typo"})
    assert bad.status_code == 400 and "use a decimal point" in bad.content.decode()
    why = client_for(lead).post(_item_url(item, "correct"), {"value": "-3.5", "notes": " "})
    assert why.status_code == 400 and "Say why the label changed." in why.content.decode()
    done = client_for(lead).post(_item_url(item, "correct"), {"value": "-3.5", "notes": "typo: one digit"}, follow=True)
    body = done.content.decode()
    assert "Corrected the label" in body and "-35 → -3.5" in body and "(typo: one digit)" in body
    item.refresh_from_db()
    assert item.label == -3.5 and item.notes == "from the ELN"
    assert Measurement.objects.get(queue_item=item).value == -3.5
    event = AuditEvent.objects.get(item=item, action="correct")
    assert event.data == {"old_value": -35.0, "new_value": -3.5, "notes": "typo: one digit"} and event.actor == lead


def test_corrections_over_the_api(api_for, lead, scientist, other_scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    url = f"/api/active-learning/queue/{item.pk}/correct/"
    assert api_for(lead).post(url, {"value": 1.0, "notes": "x"}, format="json").status_code == 409  # not labeled yet
    services.label_submit(item_id=item.pk, user=scientist, value=2.0)
    assert api_for(other_scientist).post(url, {"value": 1.0, "notes": "x"}, format="json").status_code == 403
    assert api_for(_viewer()).post(url, {"value": 1.0, "notes": "x"}, format="json").status_code == 403
    bad = api_for(lead).post(url, {"value": "1e400", "notes": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "value"
    unexplained = api_for(lead).post(url, {"value": 1.25}, format="json")
    assert unexplained.status_code == 400 and unexplained.json()["field"] == "notes"
    same = api_for(lead).post(url, {"value": "2.0", "notes": "x"}, format="json")
    assert same.status_code == 400 and "nothing to correct" in same.json()["detail"]
    ok = api_for(lead).post(url, {"value": 1.25, "notes": "re-measured"}, format="json")
    assert ok.status_code == 200 and ok.json()["label"] == 1.25
    assert Measurement.objects.get(queue_item=item).value == 1.25


def test_admin_shows_queue_labels_read_only_and_validates_the_rest(client_for, lead, scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value=2.0)
    linked = Measurement.objects.get(queue_item=item)
    c = client_for(lead)
    page = c.get(reverse("admin:compounds_measurement_change", args=[linked.pk])).content.decode()
    assert 'name="value"' not in page  # corrected on the labeling page, where the audit trail is
    add = reverse("admin:compounds_measurement_add")
    response = c.post(add, {"compound": item.compound_id, "assay": item.model.assay_id, "value": "1e39",
                            "source": "experimental", "confidence": "", "notes": ""})
    assert response.status_code == 200 and "no larger than 1e+38" in response.content.decode()
    assert Measurement.objects.count() == 1
    c.post(add, {"compound": item.compound_id, "assay": item.model.assay_id, "value": "-4.5",
                 "source": "literature", "confidence": "", "notes": ""})
    made = Measurement.objects.exclude(pk=linked.pk).get()
    assert made.value == -4.5 and made.created_by == lead
    # A classification assay takes its class names, as everywhere else.
    classes = AssayFactory(name="cls", task_type="classification", classes=["(A) low", "(B) high"])
    c.post(add, {"compound": item.compound_id, "assay": classes.pk, "value": "(B) high",
                 "source": "literature", "confidence": "", "notes": ""})
    assert Measurement.objects.get(assay=classes).value == 1.0
    events = c.get(reverse("admin:labeling_auditevent_changelist")).content.decode()
    assert f"{item.compound} for {item.model}" in events and "(labeled)" not in events


# --- navigation --------------------------------------------------------------------------


def test_next_walks_down_the_queue_instead_of_bouncing(client_for, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    c.get(reverse("labeling:labeling"))  # claims items[0]: in progress, still open, at the top
    seen = [items[0].pk]
    url = _item_url(items[0])
    for _ in range(4):
        nxt = c.get(url).context["next_item"]
        seen.append(nxt.pk)
        url = _item_url(nxt)
    assert seen == [i.pk for i in items]
    # At the bottom it wraps round to the top rather than stopping.
    assert c.get(url).context["next_item"].pk == items[0].pk


def test_the_model_filter_survives_save_skip_and_next(client_for, scientist, model, class_model):  # type: ignore[no-untyped-def]
    mine = [LabelQueueItemFactory(model=class_model, priority_score=1.0 - i / 10) for i in range(3)]
    LabelQueueItemFactory(model=model, priority_score=99.0)  # the best item overall, another model
    c = client_for(scientist)
    start = c.get(reverse("labeling:labeling"), {"model": class_model.pk})
    assert start["Location"] == f"{_item_url(mine[0])}?model={class_model.pk}"
    page = c.get(start["Location"])
    assert page.context["next_item"].pk == mine[1].pk
    body = page.content.decode()
    assert f'<input type="hidden" name="model" value="{class_model.pk}">' in body
    assert f"{_item_url(mine[1])}?model={class_model.pk}" in body
    saved = c.post(_item_url(mine[0], "submit"), {"value": "2", "source": "experimental", "model": class_model.pk})
    assert saved["Location"] == f"{_item_url(mine[1])}?model={class_model.pk}"
    skipped = c.post(_item_url(mine[1], "skip"), {"model": class_model.pk})
    assert skipped["Location"] == f"{_item_url(mine[2])}?model={class_model.pk}"


def test_the_api_filters_my_items_and_refuses_unknown_models(api_for, scientist, lead):  # type: ignore[no-untyped-def]
    mine = LabelQueueItemFactory(assigned_to=scientist)
    LabelQueueItemFactory(assigned_to=lead)
    LabelQueueItemFactory()
    listed = api_for(scientist).get("/api/active-learning/queue/", {"assigned_to": "me"}).json()["results"]
    assert [r["id"] for r in listed] == [str(mine.pk)]
    missing = api_for(scientist).post("/api/active-learning/queue/claim-next/", {"model": 987654}, format="json")
    assert missing.status_code == 404


# --- admin compounds -----------------------------------------------------------------------


def test_admin_adds_compounds_through_the_chemistry(client_for, lead):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    add = reverse("admin:compounds_compound_add")
    bad = c.post(add, {"smiles": "not a smiles ((", "name": "junk", "external_id": ""})
    assert bad.status_code == 200 and "Invalid structure" in bad.content.decode()
    assert not Compound.objects.exists()
    c.post(add, {"smiles": "OCC", "name": "ethanol", "external_id": "E-1"})
    made = Compound.objects.get()
    assert (made.canonical_smiles, made.inchikey, made.external_id) == ("CCO", "LFQSCWFLJHTTHZ-UHFFFAOYSA-N", "E-1")
    assert made.fingerprint and made.heavy_atoms == 3
    dup = c.post(add, {"smiles": "C(C)O", "name": "again", "external_id": ""})
    assert f"already registered as compound #{made.pk} ethanol" in dup.content.decode()
    assert Compound.objects.count() == 1
    page = c.get(reverse("admin:compounds_compound_change", args=[made.pk])).content.decode()
    assert 'name="smiles"' not in page and 'name="name"' in page  # the structure is read-only
    assert "bits set" in page and "b&#x27;" not in page


def test_why_selected_names_classes_rounds_and_the_regression_threshold(client_for, viewer, model, class_model):  # type: ignore[no-untyped-def]
    cls = LabelQueueItemFactory(model=class_model, score_components={"predicted_class": 2, "round": 0, "margin": 0.4})
    body = client_for(viewer).get(_item_url(cls)).content.decode()
    assert "<td>Predicted class</td><td class=\"num\">high</td>" in body
    assert "Class-balanced round (1 = the best of each predicted class)</td><td class=\"num\">1</td>" in body
    assert "Margin (closeness to the decision boundary)" in body
    reg = LabelQueueItemFactory(model=model, score_components={"margin": -1.78})
    body = client_for(viewer).get(_item_url(reg)).content.decode()
    assert "Closeness to the threshold" in body and "decision boundary" not in body


def test_403_and_404_pages_say_why_and_keep_the_navigation(client_for, scientist):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    denied = c.get(reverse("cycles:selection"))
    body = denied.content.decode()
    assert denied.status_code == 403
    assert "This needs the lead role." in body and "signed in as <strong>sam-scientist</strong> (scientist)" in body
    assert "Label queue</a>" in body  # the tabs, not a bare "403 Forbidden"
    missing = c.get("/queue/label/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and "No such queue item." in missing.content.decode()
    nowhere = c.get("/no/such/page/")
    assert nowhere.status_code == 404 and "There is nothing at this address." in nowhere.content.decode()


def test_claim_next_with_a_superseded_model_id_says_which_version_is_active(api_for, scientist):  # type: ignore[no-untyped-def]
    old = MLModelFactory(name="Lineage", status="superseded", version=1)
    new = MLModelFactory(name="Lineage", status="active", version=2, assay=old.assay, validation_set=old.validation_set)
    LabelQueueItemFactory(model=new)
    response = api_for(scientist).post("/api/active-learning/queue/claim-next/", {"model": old.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["active_model"] == new.pk and f"model id {new.pk}, v2" in response.json()["detail"]
    claimed = api_for(scientist).post("/api/active-learning/queue/claim-next/", {"model": new.pk}, format="json")
    assert claimed.json()["detail"] == "claimed"


def test_the_labeling_tab_follows_a_filter_on_a_replaced_version(client_for, scientist):  # type: ignore[no-untyped-def]
    old = MLModelFactory(name="Lineage", status="superseded", version=1)
    new = MLModelFactory(name="Lineage", status="active", version=2, assay=old.assay, validation_set=old.validation_set)
    item = LabelQueueItemFactory(model=new)
    c = client_for(scientist)
    moved = c.get(reverse("labeling:labeling"), {"model": old.pk})
    assert moved["Location"] == f"{reverse('labeling:labeling')}?model={new.pk}"
    assert c.get(moved["Location"])["Location"] == f"{_item_url(item)}?model={new.pk}"


def _viewer():  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    user = UserFactory(username="corrections-viewer")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    return user


def test_the_labeler_fixes_their_own_typo_on_the_page_and_undoes_a_stray_skip(client_for, scientist):  # type: ignore[no-untyped-def]
    model = MLModelFactory(assay=AssayFactory(name="logS own", units="log mol/L"))
    labeled, skipped, _ = (LabelQueueItemFactory(model=model, priority_score=9 - i) for i in range(3))
    c = client_for(scientist)
    c.post(_item_url(labeled, "submit"), {"value": "-33", "source": "experimental"})
    # Back on the item just labeled: the labeler may correct it (a reason is still required).
    assert "Correct this label" in c.get(_item_url(labeled)).content.decode()
    done = c.post(_item_url(labeled, "correct"), {"value": "-3.3", "notes": "typo"}, follow=True)
    assert "-33 → -3.3" in done.content.decode()
    assert AuditEvent.objects.get(item=labeled, action="correct").actor == scientist

    next_page = c.post(_item_url(skipped, "skip"), follow=True).content.decode()
    assert reverse("labeling:unskip", args=[skipped.pk]) in next_page  # the page after offers the undo
    assert "Undo skip" in c.get(_item_url(skipped)).content.decode()
    undone = c.post(reverse("labeling:unskip", args=[skipped.pk]), follow=True)
    assert "Skip undone" in undone.content.decode() and 'id="label-form"' in undone.content.decode()
    skipped.refresh_from_db()
    assert skipped.status == "pending"
