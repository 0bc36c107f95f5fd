"""The class a scientist clicks is the class stored, whatever the class names look like:
text is a class name, a number is a class index (docs/api.md, "Class values")."""

import io
import re

import pytest
from django.urls import reverse

from compounds import services as compound_services
from compounds.models import Measurement, TaskType
from config.exceptions import ValidationFailed
from labeling import services
from labeling.models import QueueStatus
from tests.factories import AssayFactory, LabelQueueItemFactory, MLModelFactory

pytestmark = pytest.mark.django_db

CHOICE = re.compile(r'<label class="class-choice"><input type="radio" name="value" value="([^"]*)"[^>]*> <span class="kbd">\d</span> ([^<]*)')
OPTION = re.compile(r'<option value="([^"]*)" (selected)?>([^<]*)</option>')


def _class_item(classes: list[str], **kwargs):  # type: ignore[no-untyped-def]
    assay = AssayFactory(task_type=TaskType.CLASSIFICATION, classes=classes, units="")
    return LabelQueueItemFactory(model=MLModelFactory(assay=assay), **kwargs)


# --- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "raw", "index"),
    [
        (["1", "2", "3"], "2", 1.0),  # text is a name, even when it looks like a number
        (["1", "2", "3"], 2, 2.0),  # a JSON number is an index
        (["1", "0"], "0", 1.0),
        (["1", "0"], "1", 0.0),
        (["1", "0"], 0, 0.0),
        (["inactive", "active"], "active", 1.0),
        (["inactive", "active"], 1, 1.0),
        (["inactive", "active"], 1.0, 1.0),
        # No class name is a number, so digits can only be an index (CSV files with 0/1).
        (["inactive", "active"], "1", 1.0),
        (["soluble, yes ✓", "Ünlöslich  (no)"], " Ünlöslich  (no) ", 1.0),
    ],
)
def test_text_is_a_class_name_and_a_number_is_an_index(classes, raw, index):  # type: ignore[no-untyped-def]
    assay = AssayFactory(task_type=TaskType.CLASSIFICATION, classes=classes)
    assert compound_services.parse_measurement_value(assay, raw) == index


@pytest.mark.parametrize(
    ("classes", "raw", "message"),
    [
        # "0" names no class, and reading it as an index would make "0" the class "1".
        (["1", "2", "3"], "0", """value '0' is not one of the classes "1", "2", "3"; this assay's class names are numbers"""),
        (["soluble, yes ✓", "Ünlöslich  (no)"], "soluble", """not one of the classes "soluble, yes ✓", "Ünlöslich  (no)\""""),
        (["inactive", "active"], 0.5, "class index 0.5 is not a whole number"),
        (["inactive", "active"], "0.5", "class index 0.5 is not a whole number"),
        (["inactive", "active"], 2, "class index 2 is out of range (0–1)"),
        (["inactive", "active"], 10**400, "is out of range (0–1)"),
        (["inactive", "active"], True, "class name or a class index"),
    ],
)
def test_values_naming_no_class_are_refused_saying_why(classes, raw, message):  # type: ignore[no-untyped-def]
    assay = AssayFactory(task_type=TaskType.CLASSIFICATION, classes=classes)
    with pytest.raises(ValidationFailed) as exc:
        compound_services.parse_measurement_value(assay, raw)
    assert message in exc.value.message
    assert exc.value.extra == {"field": "value"}


# --- every way a class comes in -----------------------------------------------------------


@pytest.mark.parametrize("classes", [["1", "2", "3"], ["1", "0"], ["low", "mid", "high"]])
def test_the_radio_clicked_is_the_class_saved(client_for, scientist, classes):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    for position, name in enumerate(classes):
        item = _class_item(classes, prediction=0.0, probabilities=None)
        body = c.get(reverse("labeling:item", args=[item.pk])).content.decode()
        radios = {label.strip(): value for value, label in CHOICE.findall(body)}
        assert list(radios) == classes
        c.post(reverse("labeling:submit", args=[item.pk]), {"value": radios[name], "source": "experimental"})
        item.refresh_from_db()
        assert item.status == QueueStatus.LABELED
        assert item.label == float(position) and item.model.assay.format_value(item.label) == name


def test_a_refused_submit_keeps_the_chosen_radio(client_for, scientist):  # type: ignore[no-untyped-def]
    item = _class_item(["1", "2", "3"])
    body = client_for(scientist).post(
        reverse("labeling:submit", args=[item.pk]), {"value": "2", "source": "imported"}
    ).content.decode()
    checked = [label.strip() for value, label in CHOICE.findall(body) if f'value="{value}" checked' in body]
    assert checked == ["2"]


def test_the_correction_dropdown_shows_and_saves_class_names(client_for, scientist, lead):  # type: ignore[no-untyped-def]
    item = _class_item(["1", "0"])
    services.label_submit(item_id=item.pk, user=scientist, value="1")  # the class named "1": index 0
    c = client_for(lead)
    body = c.get(reverse("labeling:item", args=[item.pk])).content.decode()
    options = OPTION.findall(body[body.index("Correct this label"):])
    assert [(value, bool(selected), text) for value, selected, text in options] == [("1", True, "1"), ("0", False, "0")]
    c.post(reverse("labeling:correct", args=[item.pk]), {"value": "0", "notes": "misread the plate"})
    item.refresh_from_db()
    assert item.label == 1.0 and item.model.assay.format_value(item.label) == "0"
    assert Measurement.objects.get(queue_item=item).value == 1.0


def test_the_api_reads_a_json_string_as_a_name_and_a_json_number_as_an_index(api_for, scientist):  # type: ignore[no-untyped-def]
    by_name, by_index = _class_item(["1", "2", "3"]), _class_item(["1", "2", "3"])
    api = api_for(scientist)
    assert api.post(f"/api/active-learning/queue/{by_name.pk}/label/", {"value": "2"}, format="json").status_code == 200
    assert api.post(f"/api/active-learning/queue/{by_index.pk}/label/", {"value": 2}, format="json").status_code == 200
    by_name.refresh_from_db()
    by_index.refresh_from_db()
    assert (by_name.label, by_index.label) == (1.0, 2.0)
    compound, assay = by_name.compound, by_name.model.assay
    made = api.post("/api/measurements/", {"compound": compound.pk, "assay": assay.pk, "value": "3"}, format="json")
    assert made.status_code == 201 and Measurement.objects.get(pk=made.json()["id"]).value == 2.0


def test_an_import_reads_numeric_class_names_as_names():  # type: ignore[no-untyped-def]
    assay = AssayFactory(task_type=TaskType.CLASSIFICATION, classes=["1", "0"])
    data = b"smiles,label\nCCO,0\nCCCO,1\nCCCCO,2\n"
    report = compound_services.compounds_import(
        stream=io.BytesIO(data), filename="x.csv", dataset_name="d", assay=assay, value_column="label"
    )
    values = dict(Measurement.objects.values_list("compound__canonical_smiles", "value"))
    assert values == {"CCO": 1.0, "CCCO": 0.0}
    assert "not one of the classes" in report.issues[0].reason
