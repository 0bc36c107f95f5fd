"""Admin cannot delete or re-interpret what the history depends on (leads only)."""

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone

from compounds.models import Assay, Compound, Measurement, TaskType
from labeling import services
from labeling.models import LabelQueueItem
from tests.factories import (
    AssayFactory,
    CompoundFactory,
    LabelQueueItemFactory,
    MeasurementFactory,
    MLModelFactory,
    ValidationSetFactory,
)

pytestmark = pytest.mark.django_db


def _delete_selected(client, name: str, pks: list) -> str:  # type: ignore[no-untyped-def]
    changelist = reverse(f"admin:{name}_changelist")
    response = client.post(
        changelist, {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [str(p) for p in pks], "post": "yes"}
    )
    return response.content.decode() if response.status_code == 200 else ""


# --- Compounds ------------------------------------------------------------------------------


def test_a_validation_compound_cannot_be_deleted_and_the_page_says_why(client_for, lead):  # type: ignore[no-untyped-def]
    vset = ValidationSetFactory(name="Solubility validation")
    compound = CompoundFactory(name="aspirin")
    vset.compounds.add(compound)
    c = client_for(lead)
    url = reverse("admin:compounds_compound_delete", args=[compound.pk])
    page = c.get(url).content.decode()
    assert "Solubility validation" in page and "frozen yardstick" in page
    c.post(url, {"post": "yes"})
    body = _delete_selected(c, "compounds_compound", [compound.pk])
    assert "Solubility validation" in body
    assert Compound.objects.filter(pk=compound.pk).exists()
    assert vset.compounds.count() == 1


def test_compounds_with_measurements_or_queue_items_cannot_be_deleted(client_for, lead):  # type: ignore[no-untyped-def]
    measured = MeasurementFactory().compound
    queued = LabelQueueItemFactory().compound
    free = CompoundFactory()
    c = client_for(lead)
    body = _delete_selected(c, "compounds_compound", [measured.pk, queued.pk, free.pk])
    assert "1 measurement (training data)" in body and "1 label-queue item" in body
    # One protected compound stops the whole bulk delete; nothing goes.
    assert Compound.objects.filter(pk__in=[measured.pk, queued.pk, free.pk]).count() == 3
    c.post(reverse("admin:compounds_compound_delete", args=[free.pk]), {"post": "yes"})
    assert not Compound.objects.filter(pk=free.pk).exists()  # nothing refers to it


# --- Assays -----------------------------------------------------------------------------------


def _assay_post(assay: Assay, **changes: object) -> dict:  # type: ignore[type-arg]
    data = {
        "name": assay.name, "description": "", "units": assay.units, "task_type": assay.task_type,
        "classes": "[]", "direction": assay.direction, "min_value": "", "max_value": "",
    }
    data.update(changes)
    return data


def test_an_assay_in_use_keeps_its_task_type_classes_and_units(client_for, lead):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="logS", units="log mol/L")
    MLModelFactory(assay=assay)
    c = client_for(lead)
    url = reverse("admin:compounds_assay_change", args=[assay.pk])
    page = c.get(url).content.decode()
    assert 'name="task_type"' not in page and 'name="classes"' not in page and 'name="units"' not in page
    c.post(url, _assay_post(assay, task_type="classification", classes='["low", "high"]', units="µM", max_value="5"))
    assay.refresh_from_db()
    assert (assay.task_type, assay.classes, assay.units, assay.max_value) == ("regression", [], "log mol/L", 5.0)


def test_an_unused_assay_can_still_be_fixed(client_for, lead):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="fresh", units="")
    c = client_for(lead)
    c.post(reverse("admin:compounds_assay_change", args=[assay.pk]), _assay_post(assay, units="log mol/L"))
    assay.refresh_from_db()
    assert assay.units == "log mol/L"


@pytest.mark.parametrize(
    ("task_type", "classes", "error"),
    [
        ("classification", "[]", "two or more distinct"),
        ("classification", '["a", "a"]', "two or more distinct"),
        ("classification", '[1, 2]', "two or more distinct"),
        ("regression", '["low", "high"]', "a regression assay has no classes"),
    ],
)
def test_adding_an_assay_checks_its_classes(client_for, lead, task_type, classes, error):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    page = c.post(reverse("admin:compounds_assay_add"), _assay_post(Assay(name="new one", task_type=task_type),
                                                                     classes=classes))
    assert page.status_code == 200 and error in page.content.decode()
    assert not Assay.objects.filter(name="new one").exists()


def test_adding_a_classification_assay_with_classes_works(client_for, lead):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    c.post(reverse("admin:compounds_assay_add"),
           _assay_post(Assay(name="sol class", task_type=TaskType.CLASSIFICATION), classes='["low", "high"]'))
    assert Assay.objects.get(name="sol class").classes == ["low", "high"]


# --- Measurements -------------------------------------------------------------------------------


def test_a_queue_label_cannot_be_deleted_in_admin(client_for, lead, scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value="-2.5")
    measurement = Measurement.objects.get(queue_item=item)
    c = client_for(lead)
    url = reverse("admin:compounds_measurement_delete", args=[measurement.pk])
    assert "“Correct this label” on the item" in c.get(url).content.decode()
    c.post(url, {"post": "yes"})
    assert "“Correct this label” on the item" in _delete_selected(c, "compounds_measurement", [measurement.pk])
    assert Measurement.objects.filter(pk=measurement.pk).exists()
    # The control the refusal names is there, on that page.
    assert "<summary>Correct this label</summary>" in c.get(reverse("labeling:item", args=[item.pk])).content.decode()


def test_a_measurement_a_version_trained_on_cannot_be_deleted_but_a_newer_one_can(client_for, lead):  # type: ignore[no-untyped-def]
    assay = AssayFactory()
    learned = MeasurementFactory(assay=assay)
    MLModelFactory(assay=assay, name="Solubility", version=2, trained_at=timezone.now())
    newer = MeasurementFactory(assay=assay)
    c = client_for(lead)
    assert "Solubility v2 trained on it" in _delete_selected(c, "compounds_measurement", [learned.pk])
    assert Measurement.objects.filter(pk=learned.pk).exists()
    c.post(reverse("admin:compounds_measurement_delete", args=[newer.pk]), {"post": "yes"})
    assert not Measurement.objects.filter(pk=newer.pk).exists()


# --- Queue items --------------------------------------------------------------------------------


def test_queue_items_are_never_deleted_in_admin(client_for, lead):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    c = client_for(lead)
    changelist = reverse("admin:labeling_labelqueueitem_changelist")
    assert "delete_selected" not in c.get(changelist).content.decode()
    c.post(changelist, {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [str(item.pk)], "post": "yes"})
    assert c.post(reverse("admin:labeling_labelqueueitem_delete", args=[item.pk]), {"post": "yes"}).status_code == 403
    assert LabelQueueItem.objects.filter(pk=item.pk).exists()


def test_a_compound_renamed_in_admin_keeps_a_one_line_name(client_for, lead):  # type: ignore[no-untyped-def]
    compound = CompoundFactory(name="plain")
    client_for(lead).post(
        reverse("admin:compounds_compound_change", args=[compound.pk]),
        {"name": "two\r\nlines\x1b", "external_id": "A\tB"},
    )
    compound.refresh_from_db()
    assert (compound.name, compound.external_id) == ("two lines", "A B")
