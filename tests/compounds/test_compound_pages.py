import io

import pytest
from django.urls import reverse

from compounds.models import Compound
from tests.factories import CompoundFactory

pytestmark = pytest.mark.django_db

READ_PAGES = ["compounds:list", "labeling:queue", "labeling:labeling", "cycles:history", "mlmodels:list"]


@pytest.mark.parametrize("name", [*READ_PAGES, "compounds:import", "cycles:selection"])
def test_anonymous_users_are_sent_to_login(client, name):  # type: ignore[no-untyped-def]
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ["viewer", "scientist", "lead"])
@pytest.mark.parametrize("name", READ_PAGES)
def test_every_role_can_read(request, client_for, role, name):  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(role)).get(reverse(name))
    assert response.status_code == 200


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("scientist", 403), ("lead", 200)])
@pytest.mark.parametrize("name", ["compounds:import", "cycles:selection"])
def test_only_leads_reach_lead_pages(request, client_for, role, status, name):  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(role)).get(reverse(name))
    assert response.status_code == status


def test_the_list_shows_structures_and_searches(client_for, viewer):  # type: ignore[no-untyped-def]
    benzene = CompoundFactory(smiles="c1ccccc1", name="benzene")
    CompoundFactory(smiles="CCO", name="ethanol")
    response = client_for(viewer).get(reverse("compounds:list"), {"q": "benz"})
    body = response.content.decode()
    assert reverse("compounds:structure", args=[benzene.pk]) in body
    assert "ethanol" not in body


def test_the_search_fragment_is_returned_to_htmx(client_for, viewer):  # type: ignore[no-untyped-def]
    CompoundFactory(smiles="CCO", name="ethanol")
    response = client_for(viewer).get(reverse("compounds:list"), {"q": "eth"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "ethanol" in body
    assert "<html" not in body


def test_detail_page_shows_properties_and_similar_compounds(client_for, viewer):  # type: ignore[no-untyped-def]
    c = CompoundFactory(smiles="CC(=O)Oc1ccccc1C(=O)O", name="aspirin")
    CompoundFactory(smiles="OC(=O)c1ccccc1O", name="salicylic acid")
    client = client_for(viewer)
    body = client.get(reverse("compounds:detail", args=[c.pk])).content.decode()
    assert "BSYNRYMUTXBXSQ-UHFFFAOYSA-N" in body
    # The nearest structures scan the whole registry, so they load after the page.
    similar_url = reverse("compounds:similar", args=[c.pk])
    assert f'hx-get="{similar_url}"' in body and "salicylic acid" not in body
    fragment = client.get(similar_url, HTTP_HX_REQUEST="true").content.decode()
    assert "salicylic acid" in fragment and "<html" not in fragment
    assert "aspirin" not in fragment  # the compound itself is left out
    # The link to every similar compound runs a similarity search for this structure.
    link = reverse("compounds:list") + "?mode=similarity&amp;threshold=0.4&amp;q=CC%28%3DO%29Oc1ccccc1C%28%3DO%29O"
    assert link in body


def test_unknown_compound_is_404(client_for, viewer):  # type: ignore[no-untyped-def]
    assert client_for(viewer).get(reverse("compounds:detail", args=[999999])).status_code == 404
    assert client_for(viewer).get(reverse("compounds:similar", args=[999999])).status_code == 404
    assert client_for(viewer).get(reverse("compounds:structure", args=[999999])).status_code == 404


def test_structure_svg_is_served_and_cached(client_for, viewer):  # type: ignore[no-untyped-def]
    c = CompoundFactory(smiles="c1ccccc1")
    response = client_for(viewer).get(reverse("compounds:structure", args=[c.pk]), {"w": "abc"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content
    assert "max-age=3600" in response["Cache-Control"]


def test_a_lead_imports_a_file_and_sees_the_row_report(client_for, lead):  # type: ignore[no-untyped-def]
    upload = io.BytesIO(b"smiles,name,logS\nCCO,ethanol,1.0\nxyz,bad,2\n")
    upload.name = "upload.csv"
    response = client_for(lead).post(
        reverse("compounds:import"),
        {"file": upload, "dataset": "uploaded", "value_column": "logS", "new_assay": "New assay", "task_type": "regression"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "unparseable SMILES" in body
    assert Compound.objects.filter(name="ethanol").exists()


def test_a_windows_1252_file_keeps_its_names_and_says_so(client_for, lead):  # type: ignore[no-untyped-def]
    upload = io.BytesIO("smiles,name\nCCOCC,\u00e4ther\nCCO,ethanol\n".encode("cp1252"))
    upload.name = "legacy.csv"
    body = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "legacy"}).content.decode()
    assert Compound.objects.get(canonical_smiles="CCOCC").name == "\u00e4ther"
    assert "The file is not UTF-8: 1 byte was read as Windows-1252" in body


def test_an_import_without_one_valid_row_leaves_no_empty_dataset(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Dataset

    upload = io.BytesIO(b"smiles,name\nxyz,bad\nC1CC,worse\n")
    upload.name = "all-bad.csv"
    body = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "QA2"}).content.decode()
    assert "unparseable SMILES" in body and "Nothing imported: none of the 2 rows could be read" in body
    assert not Dataset.objects.filter(name="QA2").exists()


def test_a_gzipped_upload_is_decompressed_and_a_broken_one_refused(client_for, lead):  # type: ignore[no-untyped-def]
    import gzip

    upload = io.BytesIO(gzip.compress(b"smiles,name\nCCO,ethanol\nCCCO,propanol\n"))
    upload.name = "two.csv.gz"
    body = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "gz"}).content.decode()
    assert "Imported 2 compounds" in body
    assert set(Compound.objects.values_list("name", flat=True)) == {"ethanol", "propanol"}
    broken = io.BytesIO(gzip.compress(b"smiles\nCCN\n")[:-12])
    broken.name = "broken.csv.gz"
    body = client_for(lead).post(reverse("compounds:import"), {"file": broken, "dataset": "gz2"}).content.decode()
    assert "could not be decompressed" in body and not Compound.objects.filter(canonical_smiles="CCN").exists()


def test_a_failed_import_creates_no_new_assay(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Assay

    upload = io.BytesIO(b"smiles,name\nCCO,ethanol\n")
    upload.name = "upload.csv"
    response = client_for(lead).post(
        reverse("compounds:import"),
        {"file": upload, "dataset": "uploaded", "value_column": "nonexistent", "new_assay": "QA assay",
         "task_type": "regression"},
    )
    assert "value column &#x27;nonexistent&#x27; not found" in response.content.decode()
    assert not Assay.objects.filter(name="QA assay").exists() and not Compound.objects.exists()


def test_an_import_with_a_value_column_but_no_assay_is_refused_inline(client_for, lead):  # type: ignore[no-untyped-def]
    upload = io.BytesIO(b"smiles\nCCO\n")
    upload.name = "upload.csv"
    response = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "d", "value_column": "v"})
    assert "Choose or name the assay" in response.content.decode()
    assert not Compound.objects.exists()


def test_login_page_and_demo_login(client):  # type: ignore[no-untyped-def]
    from config.demo import DEMO_PASSWORD, demo_users_create

    demo_users_create()
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "scientist", "password": DEMO_PASSWORD})
    assert response.status_code == 302


def test_admin_is_for_leads_only(client_for, scientist, lead):  # type: ignore[no-untyped-def]
    scientist.is_staff = True
    scientist.save()
    assert client_for(scientist).get("/admin/").status_code == 302
    assert client_for(lead).get("/admin/").status_code == 200
    assert client_for(lead).get("/admin/compounds/compound/").status_code == 200


def _upload(data: bytes, name: str = "classes.csv") -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def test_a_web_import_creates_a_classification_assay_with_the_classes_given(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Assay, Measurement

    data = "smiles,solubility\nCCO,\"soluble, yes ✓\"\nCCCCCCCCCC,Ünlöslich  (no)\n".encode()
    body = client_for(lead).post(
        reverse("compounds:import"),
        {"file": _upload(data), "dataset": "sol", "value_column": "solubility", "new_assay": "Sol class",
         "task_type": "classification", "classes": "soluble, yes ✓\r\n Ünlöslich  (no)\r\n"},
    ).content.decode()
    assert "Imported 2 compounds" in body
    assay = Assay.objects.get(name="Sol class")
    assert assay.classes == ["soluble, yes ✓", "Ünlöslich  (no)"]
    values = dict(Measurement.objects.filter(assay=assay).values_list("compound__canonical_smiles", "value"))
    assert values == {"CCO": 0.0, "CCCCCCCCCC": 1.0}


def test_a_new_classification_assay_without_classes_is_refused_naming_the_field(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Assay

    response = client_for(lead).post(
        reverse("compounds:import"),
        {"file": _upload(b"smiles,label\nCCO,x\n"), "dataset": "d", "value_column": "label", "new_assay": "No classes",
         "task_type": "classification", "classes": "x"},
    )
    assert "A classification assay needs its classes" in response.content.decode()
    assert response.context["form"].errors["classes"]
    assert not Assay.objects.filter(name="No classes").exists() and not Compound.objects.exists()


def test_an_import_whose_values_all_fail_leaves_no_new_assay(client_for, lead):  # type: ignore[no-untyped-def]
    from compounds.models import Assay, Dataset

    body = client_for(lead).post(
        reverse("compounds:import"),
        {"file": _upload(b"smiles,label\nCCO,maybe\nCCCO,perhaps\n"), "dataset": "QA3", "value_column": "label",
         "new_assay": "QA classes", "task_type": "classification", "classes": "yes\nno"},
    ).content.decode()
    assert "is not one of the classes &quot;yes&quot;, &quot;no&quot;" in body
    assert "the new assay was not created" in body
    assert not Assay.objects.filter(name="QA classes").exists() and not Dataset.objects.filter(name="QA3").exists()


def test_an_import_naming_an_existing_assay_of_another_kind_is_refused(client_for, lead):  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory

    AssayFactory(name="logS", task_type="regression")
    response = client_for(lead).post(
        reverse("compounds:import"),
        {"file": _upload(b"smiles,label\nCCO,yes\n"), "dataset": "d", "value_column": "label", "new_assay": "logS",
         "task_type": "classification", "classes": "yes\nno"},
    )
    assert "task_type is &#x27;regression&#x27;, not &#x27;classification&#x27;" in response.content.decode()
    assert response.context["form"].errors["task_type"] and not Compound.objects.exists()
