"""Hostile input: formula injection on export, HTML in names and notes, oversized uploads."""

import csv
import io

import pytest
from django.urls import reverse

from labeling import services
from tests.factories import CompoundFactory, LabelQueueItemFactory

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_formula_injection_in_names_and_notes_is_escaped_on_export(client_for, scientist):  # type: ignore[no-untyped-def]
    compound = CompoundFactory(smiles="CCO", name="=cmd|' /C calc'!A0")
    item = LabelQueueItemFactory(compound=compound)
    services.label_submit(item_id=item.pk, user=scientist, value=1.5, notes="+SUM(1,2)")
    response = client_for(scientist).get(reverse("labeling:export"), {"status": "all"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0]["compound_name"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["notes"] == "'+SUM(1,2)"
    assert rows[0]["label"] == "1.5"  # numbers are not mangled
    assert rows[0]["prediction"] == "0.5"


def test_html_in_names_and_notes_is_escaped_on_every_page(client_for, lead, scientist):  # type: ignore[no-untyped-def]
    compound = CompoundFactory(smiles="CCCO", name=XSS)
    item = LabelQueueItemFactory(compound=compound)
    services.label_submit(item_id=item.pk, user=scientist, value=1.0, notes=XSS)
    pages = [
        reverse("labeling:queue") + "?status=all",
        reverse("labeling:item", args=[item.pk]),
        reverse("compounds:list"),
        reverse("compounds:detail", args=[compound.pk]),
        reverse("admin:labeling_labelqueueitem_changelist"),
    ]
    for url in pages:
        body = client_for(lead).get(url).content.decode()
        assert "<script>alert" not in body, url
        # No raw <img …onerror…> tag anywhere, and the name is shown (escaped), not dropped.
        assert "<img src=x onerror" not in body, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in body, url


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(client_for, lead, settings):  # type: ignore[no-untyped-def]
    settings.CHEMLOOP_MAX_UPLOAD_BYTES = 1024
    upload = io.BytesIO(b"smiles\n" + b"CCO\n" * 1000)
    upload.name = "big.csv"
    response = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "d"})
    assert response.status_code == 200
    assert "the limit is" in response.content.decode()


@pytest.mark.slow
def test_a_real_fifty_megabyte_upload_is_refused_cleanly_and_writes_nothing(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Compound

    line = b"CC(=O)Oc1ccccc1C(=O)O,aspirin\n"
    upload = io.BytesIO(b"smiles,name\n" + line * (51 * 1024 * 1024 // len(line) + 1))
    upload.name = "huge.csv"
    response = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "huge"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "the limit is 50.0" in body
    assert not Compound.objects.exists()


NUL_FILTERS = [
    "/admin/labeling/labelqueueitem/?status__exact=%00",
    "/admin/labeling/auditevent/?action__exact=%00",
    "/admin/compounds/measurement/?source__exact=%00",
    "/admin/compounds/assay/?task_type__exact=%00",
    "/admin/cycles/job/?status__exact=%00",
    "/admin/mlmodels/mlmodel/?status__exact=%00",
    "/admin/compounds/compound/?name=%00",
    "/admin/auth/user/?username=%00",
    "/admin/compounds/compound/?q=a%00b",
    "/compounds/?q=%00",
    "/queue/?status=%00",
]


@pytest.mark.parametrize("url", NUL_FILTERS)
def test_a_nul_character_in_a_filter_is_a_400_not_a_500(client_for, lead, url):  # type: ignore[no-untyped-def]
    response = client_for(lead).get(url)
    assert response.status_code == 400
    assert "contains a NUL character" in response.content.decode()


def test_a_nul_character_in_a_form_field_is_a_400_and_nothing_is_written(client_for, scientist):  # type: ignore[no-untyped-def]
    from labeling.models import QueueStatus

    item = LabelQueueItemFactory()
    response = client_for(scientist).post(reverse("labeling:skip", args=[item.pk]), {"notes": "a\x00b"})
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING


def test_the_api_answers_a_nul_in_its_query_with_its_json_error_contract(api_for, viewer):  # type: ignore[no-untyped-def]
    response = api_for(viewer).get("/api/compounds/?search=%00")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The parameter 'search' contains a NUL character.",
        "field": "search",
        "errors": {"search": ["The parameter 'search' contains a NUL character."]},
    }


@pytest.mark.parametrize(("name", "bad"), [("labeling_labelqueueitem", "not-a-uuid"), ("compounds_compound", "x1")])
def test_an_admin_action_on_a_malformed_id_is_a_400(client_for, lead, name, bad):  # type: ignore[no-untyped-def]
    from django.contrib.admin import helpers

    action = "skip_items" if name.startswith("labeling") else "delete_selected"
    response = client_for(lead).post(
        reverse(f"admin:{name}_changelist"), {"action": action, helpers.ACTION_CHECKBOX_NAME: [bad]}
    )
    assert response.status_code == 400 and "is not the id of a" in response.content.decode()
