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
        assert "onerror=alert" not in body or "&lt;img" in body, url


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
