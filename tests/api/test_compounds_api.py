"""Compounds, file import, assays and measurements over the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compounds.models import Compound, Measurement
from tests.factories import AssayFactory, CompoundFactory, DatasetFactory, MeasurementFactory

pytestmark = pytest.mark.django_db


def test_register_is_201_then_200_for_the_same_structure(api_for: Any, scientist: Any) -> None:
    client = api_for(scientist)
    first = client.post("/api/compounds/", {"smiles": "OCC", "name": "ethanol"}, format="json")
    assert first.status_code == 201
    assert first.json()["canonical_smiles"] == "CCO" and first.json()["properties"]["heavy_atoms"] == 3
    again = client.post("/api/compounds/", {"smiles": "CCO"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    bad = client.post("/api/compounds/", {"smiles": "C1CC"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "smiles"
    assert client.post("/api/compounds/", {}, format="json").json()["field"] == "smiles"


def test_list_searches_and_filters_by_dataset_without_n_plus_1(api_for: Any, viewer: Any, django_assert_max_num_queries: Any) -> None:
    # Ethanol explicitly: which structures the factory's sequence yields depends on test order.
    compounds = [CompoundFactory(smiles="OCC"), *(CompoundFactory() for _ in range(11))]
    ds = DatasetFactory()
    ds.compounds.add(*compounds[:4])
    client = api_for(viewer)
    with django_assert_max_num_queries(5):
        body = client.get("/api/compounds/").json()
    # The factory's sequence can yield ethanol again (get_or_create then returns the same row).
    assert body["count"] == len({c.pk for c in compounds})
    assert client.get("/api/compounds/", {"dataset": ds.pk}).json()["count"] == len({c.pk for c in compounds[:4]})
    by_smiles = client.get("/api/compounds/", {"q": "OCC"}).json()["results"]
    assert [c["canonical_smiles"] for c in by_smiles] == ["CCO"]
    assert client.get("/api/compounds/", {"q": compounds[3].name}).json()["results"][0]["id"] == compounds[3].pk
    assert client.get("/api/compounds/", {"dataset": "x"}).status_code == 400


def test_detail_has_measurements_and_unknown_ids_are_404(api_for: Any, viewer: Any) -> None:
    m = MeasurementFactory(value=3.5)
    client = api_for(viewer)
    body = client.get(f"/api/compounds/{m.compound_id}/").json()
    assert body["measurements"][0]["value"] == 3.5 and body["measurements"][0]["assay"]["name"] == m.assay.name
    for bad in ("999999", "abc", "-1", "99999999999999999999999"):
        assert client.get(f"/api/compounds/{bad}/").status_code == 404


def test_import_reports_rows_and_enforces_the_size_limit(api_for: Any, lead: Any, settings: Any) -> None:
    assay = AssayFactory()
    client = api_for(lead)
    content = b"smiles,name,logS\nCCO,ethanol,0.5\nnonsense,bad,1\nCCCO,propanol,x\n"
    response = client.post(
        "/api/compounds/import/",
        {"file": SimpleUploadedFile("rows.csv", content), "dataset": "api import", "assay": assay.pk, "value_column": "logS"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    report = response.json()
    assert (report["total_rows"], report["created"], report["invalid"], report["measurements_created"]) == (3, 1, 2, 1)
    assert [i["row"] for i in report["issues"]] == [3, 4]  # lines of the file, the header is line 1
    assert client.post("/api/compounds/import/", {"dataset": "x"}, format="multipart").json()["field"] == "file"
    bad_ext = client.post("/api/compounds/import/", {"file": SimpleUploadedFile("a.xls", b"x"), "dataset": "d"}, format="multipart")
    assert bad_ext.status_code == 400 and bad_ext.json()["field"] == "file"
    settings.CHEMLOOP_MAX_UPLOAD_BYTES = 10
    big = client.post("/api/compounds/import/", {"file": SimpleUploadedFile("rows.csv", content), "dataset": "x"}, format="multipart")
    assert big.status_code == 413 and "limit" in big.json()["detail"]


def test_assays_are_listed_and_created_by_leads(api_for: Any, lead: Any, viewer: Any) -> None:
    client = api_for(lead)
    created = client.post("/api/assays/", {"name": "tox", "task_type": "classification", "classes": ["safe", "toxic"]}, format="json")
    assert created.status_code == 201 and created.json()["classes"] == ["safe", "toxic"]
    assert client.post("/api/assays/", {"name": "tox"}, format="json").status_code == 200
    bad = client.post("/api/assays/", {"name": "c", "task_type": "classification", "classes": ["one"]}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "classes"
    assert api_for(viewer).get("/api/assays/").json()["count"] == 1


def test_an_existing_assay_name_with_other_settings_is_a_409_naming_them(api_for: Any, lead: Any) -> None:
    client = api_for(lead)
    client.post("/api/assays/", {"name": "tox", "task_type": "classification", "classes": ["safe", "toxic"]}, format="json")
    same = client.post("/api/assays/", {"name": "tox", "task_type": "classification", "classes": ["safe", "toxic"]}, format="json")
    assert same.status_code == 200 and same.json()["classes"] == ["safe", "toxic"]
    other = client.post("/api/assays/", {"name": "tox", "task_type": "classification", "classes": ["toxic", "safe"]}, format="json")
    assert other.status_code == 409 and other.json()["field"] == "classes"
    assert "classes is ['safe', 'toxic'], not ['toxic', 'safe']" in other.json()["detail"]
    regression = client.post("/api/assays/", {"name": "tox", "task_type": "regression", "units": "mg/L"}, format="json")
    assert regression.status_code == 409 and regression.json()["field"] == "task_type"
    assert "units is '', not 'mg/L'" in regression.json()["detail"]


def test_the_409_for_an_assay_in_use_does_not_send_the_user_to_edit_it_in_admin(api_for: Any, lead: Any) -> None:
    client = api_for(lead)
    client.post("/api/assays/", {"name": "tox", "task_type": "classification", "classes": ["safe", "toxic"]}, format="json")
    unused = client.post("/api/assays/", {"name": "tox", "task_type": "regression"}, format="json")
    assert unused.status_code == 409 and "a lead can edit the assay in admin" in unused.json()["detail"]
    # With a measurement, admin shows task type, classes and units read-only.
    compound = client.post("/api/compounds/", {"smiles": "CCO"}, format="json").json()
    assay_id = unused.json()["assay"]
    assert client.post("/api/measurements/", {"compound": compound["id"], "assay": assay_id, "value": "toxic"}, format="json").status_code == 201
    used = client.post("/api/assays/", {"name": "tox", "task_type": "regression"}, format="json")
    assert used.status_code == 409 and "admin" not in used.json()["detail"]
    assert "its task type, classes and units are fixed: it has measurements or models" in used.json()["detail"]


def test_a_classification_assay_needs_classes_in_every_way_it_is_made(api_for: Any, lead: Any) -> None:
    from compounds import services
    from config.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed, match="two or more distinct, non-empty classes"):
        services.assay_get_or_create(name="empty", task_type="classification")
    bad = api_for(lead).post("/api/assays/", {"name": "c", "task_type": "classification", "classes": ["a", " a"]}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "classes"


def test_measurements_are_filtered_created_and_validated(api_for: Any, scientist: Any, django_assert_max_num_queries: Any) -> None:
    assay = AssayFactory(task_type="classification", classes=["inactive", "active"])
    compound = CompoundFactory()
    for _ in range(5):
        MeasurementFactory()
    client = api_for(scientist)
    created = client.post("/api/measurements/", {"compound": compound.pk, "assay": assay.pk, "value": "active"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["value"] == 1.0 and created.json()["display_value"] == "active"
    with django_assert_max_num_queries(5):
        listed = client.get("/api/measurements/", {"assay": assay.pk}).json()
    assert listed["count"] == 1
    assert client.get("/api/measurements/").json()["count"] == 6
    assert client.get("/api/measurements/", {"compound": compound.pk}).json()["count"] == 1
    for payload, field in [
        ({"compound": compound.pk, "assay": assay.pk, "value": "maybe"}, "value"),
        ({"compound": 10**9, "assay": assay.pk, "value": 1}, "compound"),
        ({"compound": compound.pk, "assay": 10**9, "value": 1}, "assay"),
        ({"compound": compound.pk, "assay": assay.pk, "value": 1, "source": "guess"}, "source"),
    ]:
        response = client.post("/api/measurements/", payload, format="json")
        assert response.status_code == 400 and response.json()["field"] == field
    assert Measurement.objects.filter(assay=assay).count() == 1
    assert Compound.objects.count() >= 6


def test_a_compound_name_is_stored_on_one_line(api_for: Any, scientist: Any) -> None:
    response = api_for(scientist).post(
        "/api/compounds/", {"smiles": "CCCCCO", "name": "SDF evil\n$$$$\nINJECTED", "external_id": "X\t1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["name"], response.json()["external_id"]) == ("SDF evil $$$$ INJECTED", "X 1")
