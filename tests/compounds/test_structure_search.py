"""Substructure and similarity search: the chemistry, the selectors, the compound list and the API."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from django.urls import reverse
from rdkit import Chem

from compounds import chemistry, selectors
from config.exceptions import ValidationFailed
from tests.factories import CompoundFactory, DatasetFactory
from tests.solubility import FIXTURE

# --- chemistry (no database) --------------------------------------------------------


def _hits(pattern: str, smiles: list[str]) -> list[str]:
    canonical = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
    return [smiles[i] for i in chemistry.substructure_matches(chemistry.substructure_query(pattern), canonical)]


MOLECULES = ["CC(=O)O", "CC(=O)OC", "c1ccccc1C(=O)O", "Cc1ccccc1", "C1CCCCC1", "c1ccncc1", "c1cc[nH]c1", "Cn1cccc1"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # SMARTS meaning: [OH] is a hydroxyl, so the ester is not a carboxylic acid.
        ("C(=O)[OH]", ["CC(=O)O", "c1ccccc1C(=O)O"]),
        ("[CX3](=O)[OX2H1]", ["CC(=O)O", "c1ccccc1C(=O)O"]),
        # "C" is aliphatic in SMARTS: the aromatic rings are not six-membered "C" rings.
        ("C1CCCCC1", ["C1CCCCC1"]),
        ("[CH3]c", ["Cc1ccccc1"]),
        ("[nH]", ["c1cc[nH]c1"]),
        ("n", ["c1ccncc1", "c1cc[nH]c1", "Cn1cccc1"]),
        ("[r6;!a]", ["C1CCCCC1"]),
        ("*~*~*~*~*~*~*", ["c1ccccc1C(=O)O", "Cc1ccccc1"]),
        # A Kekulé SMILES means the aromatic ring, not a cyclohexatriene.
        ("C1=CC=CC=C1", ["c1ccccc1C(=O)O", "Cc1ccccc1"]),
        ("c1ccccc1", ["c1ccccc1C(=O)O", "Cc1ccccc1"]),
        ("[C^3]", ["CC(=O)O", "CC(=O)OC", "Cc1ccccc1", "C1CCCCC1", "Cn1cccc1"]),
    ],
)
def test_patterns_have_smarts_meaning_and_kekule_rings_are_aromatic(pattern: str, expected: list[str]) -> None:
    assert _hits(pattern, MOLECULES) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ("C(", "not a valid SMARTS or SMILES pattern"),
        ("[C", "not a valid SMARTS or SMILES pattern"),
        ("C" * 1001, "longer than 1000"),
        ("C" * 101, "more than 100 atoms"),
    ],
)
def test_bad_patterns_are_refused_with_the_reason(pattern: str, message: str) -> None:
    with pytest.raises(chemistry.ChemistryError, match=message):
        chemistry.substructure_query(pattern)


SMARTS_PRIMITIVES = [
    "[r6]", "[a;r5]", "[R2]", "[C;R1]", "[x3]", "[x2]", "[k6]", "[r]", "[R]", "[!R]", "C@C", "C!@C", "[R]@[R]",
    "[D3]", "[v4]", "[NX3;H2]", "[OH]c", "[CX4;!R]", "[$(C=O)]", "[$([N^3])]", "[N+](=O)[O-]", "[#7;H0;X3]",
    "C1CCCCC1", "s1cccc1", "[cH]", "C#N", "[C^2]", "[N^3]", "[#6]-,:[#7]", "[#6;z2]", "[Z1]",
]


@pytest.mark.parametrize(
    ("pattern", "perception"),
    [
        ("C(=O)[OH]", chemistry.Perception.RING_MEMBERSHIP),
        ("[R]", chemistry.Perception.RING_MEMBERSHIP),
        ("C!@C", chemistry.Perception.RING_MEMBERSHIP),
        ("c1ccccc1", chemistry.Perception.RING_MEMBERSHIP),
        ("[R2]", chemistry.Perception.SSSR),
        ("[a;r5]", chemistry.Perception.SSSR),
        ("[x3]", chemistry.Perception.SSSR),
        ("[N^3]", chemistry.Perception.FULL),
        ("[$(C=O)]", chemistry.Perception.FULL),
    ],
)
def test_each_query_asks_for_the_ring_perception_it_needs(pattern: str, perception: Any) -> None:
    assert chemistry.substructure_query(pattern).perception is perception


def test_the_cheap_parse_matches_exactly_what_a_fully_sanitised_molecule_matches() -> None:
    """substructure_matches skips the full sanitisation of stored SMILES (and, where the
    query allows, the SSSR); on the 1,282 solubility structures every primitive must give
    the same hits as RDKit's fully sanitised molecules."""
    with FIXTURE.open(newline="") as fh:
        canonical = [Chem.MolToSmiles(Chem.MolFromSmiles(r["smiles"])) for r in csv.DictReader(fh)]
    full = [Chem.MolFromSmiles(s) for s in canonical]
    for pattern in SMARTS_PRIMITIVES:
        query = chemistry.substructure_query(pattern)
        expected = [i for i, mol in enumerate(full) if mol.HasSubstructMatch(query.mol)]
        assert chemistry.substructure_matches(query, canonical) == expected, pattern
        assert 0 < len(expected) < len(canonical) or pattern == "[v4]", pattern


SCREEN_PATTERNS = [
    *SMARTS_PRIMITIVES, "C(=O)[OH]", "C1=CC=CC=C1", "c1ccc2ccccc2c1", "*~*~*~*~*~*~*", "Clc1ccccc1", "c1ccncc1",
    "[nH]", "O=C-N", "CC(C)(C)C", "[Cl,Br,I]", "[!#6;!#1]", "c-c", "c:c", "C=C", "[c;!$(c[#7])]", "N#C-c",
    "O=S(=O)N", "[#6]~[#7]~[#6]",
]


def test_the_stored_screen_never_rules_out_a_true_match() -> None:
    """The pattern fingerprint lets a search skip molecules, so it must never skip a hit:
    every pattern's screened hits on the 1,282 solubility structures equal the full match."""
    with FIXTURE.open(newline="") as fh:
        mols = [Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(r["smiles"]))) for r in csv.DictReader(fh)]
    fps = [chemistry.pattern_fingerprint(m) for m in mols]
    ruled_out = 0
    for pattern in SCREEN_PATTERNS:
        query = chemistry.substructure_query(pattern)
        may = query.may_match(fps)
        assert all(may[i] for i, m in enumerate(mols) if m.HasSubstructMatch(query.mol)), pattern
        ruled_out += int((~may).sum())
    assert ruled_out > len(SCREEN_PATTERNS) * len(mols) // 4  # and it does rule out a lot
    # A compound whose screen is not stored yet is always matched in full.
    assert chemistry.substructure_query("C#N").may_match([None, fps[0]]).tolist() == [True, False]


# --- selectors ------------------------------------------------------------------------


def test_substructure_search_lists_every_match_by_id(library: dict[str, Any]) -> None:
    result = selectors.compound_substructure_search(pattern="C(=O)[OH]")
    assert result.compounds == sorted([library["acetic acid"], library["benzoic acid"]], key=lambda c: c.pk)
    assert (result.scanned, result.searchable, result.complete) == (7, 7, True)
    assert not result.ranked_by_similarity


def test_the_screen_changes_what_is_parsed_not_what_is_found(library: dict[str, Any]) -> None:
    from compounds import services

    before = {p: selectors.compound_substructure_search(pattern=p).compounds for p in ("C(=O)[OH]", "c1ccccc1", "C#N")}
    assert services.compound_patterns_backfill_range(id_from=0, id_to=10**9) == 7
    for pattern, found in before.items():
        assert selectors.compound_substructure_search(pattern=pattern).compounds == found
    # A parse limit of 1 now finishes a search whose screen leaves one candidate.
    one = selectors.compound_substructure_search(pattern="c1ccncc1", scan_limit=1)
    assert one.compounds == [library["pyridine"]] and one.complete


def test_substructure_search_stays_inside_the_dataset(library: dict[str, Any]) -> None:
    ds = DatasetFactory()
    ds.compounds.add(library["benzoic acid"], library["toluene"])
    result = selectors.compound_substructure_search(pattern="c1ccccc1", dataset_id=ds.pk)
    assert set(result.compounds) == {library["benzoic acid"], library["toluene"]}
    assert result.searchable == 2


def test_substructure_search_says_when_it_stopped_early(library: dict[str, Any]) -> None:
    by_hits = selectors.compound_substructure_search(pattern="C", max_hits=2)
    assert len(by_hits.compounds) == 2 and by_hits.hit_limit and not by_hits.complete
    # It stopped at the second hit: the compounds after it were not looked at.
    assert by_hits.scanned == 2

    by_scan = selectors.compound_substructure_search(pattern="c1ccncc1", scan_limit=3)
    assert by_scan.compounds == [] and by_scan.scanned == 3 and not by_scan.hit_limit and not by_scan.complete


def test_a_bad_pattern_is_a_validation_error_naming_the_field(library: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as err:
        selectors.compound_substructure_search(pattern="C(")
    assert err.value.extra == {"field": "substructure"}
    assert "not a valid SMARTS or SMILES" in err.value.message


def test_similarity_search_ranks_above_the_threshold(library: dict[str, Any]) -> None:
    result = selectors.compound_similarity_search(smiles="CCc1ccccc1", threshold=0.3)
    assert result.ranked_by_similarity and result.complete
    assert result.compounds[0] == library["ethylbenzene"] and result.compounds[0].similarity == 1.0
    sims = [c.similarity for c in result.compounds]
    assert sims == sorted(sims, reverse=True) and min(sims) >= 0.3
    assert library["toluene"] in result.compounds and library["acetic acid"] not in result.compounds
    everything = selectors.compound_similarity_search(smiles="CCc1ccccc1", threshold=0.0)
    assert len(everything.compounds) == 7


def test_similarity_search_reports_the_hit_limit_and_bad_input(library: dict[str, Any]) -> None:
    capped = selectors.compound_similarity_search(smiles="CCc1ccccc1", threshold=0.0, max_hits=3)
    assert len(capped.compounds) == 3 and capped.hit_limit
    exact = selectors.compound_similarity_search(smiles="CCc1ccccc1", threshold=0.0, max_hits=7)
    assert len(exact.compounds) == 7 and not exact.hit_limit
    with pytest.raises(ValidationFailed) as err:
        selectors.compound_similarity_search(smiles="C1CC", threshold=0.5)
    assert err.value.extra == {"field": "similar_to"}
    with pytest.raises(ValidationFailed) as err:
        selectors.compound_similarity_search(smiles="CCO", threshold=1.5)
    assert err.value.extra == {"field": "threshold"}


# --- compound list page ---------------------------------------------------------------


def test_the_list_searches_by_substructure(client_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    response = client_for(viewer).get(reverse("compounds:list"), {"q": "C(=O)[OH]", "mode": "substructure"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "benzoic acid" in body and "acetic acid" in body and "methyl acetate" not in body
    assert "2 matches" in body


def test_the_list_says_what_a_capped_search_downloads_and_how_to_narrow_it(
    client_for: Any, viewer: Any, library: dict[str, Any], settings: Any
) -> None:
    settings.CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS = 2
    body = client_for(viewer).get(reverse("compounds:list"), {"q": "C", "mode": "substructure"}).content.decode()
    assert "stopped at the first 2; narrow the query or choose a dataset." in body
    assert "download these 2 (the search stopped there) as" in body
    ds = DatasetFactory()
    ds.compounds.add(library["benzoic acid"], library["toluene"], library["ethylbenzene"])
    body = client_for(viewer).get(
        reverse("compounds:list"), {"q": "C", "mode": "substructure", "dataset": ds.pk}
    ).content.decode()
    assert "stopped at the first 2; narrow the query." in body and "choose a dataset" not in body


def test_the_list_searches_by_similarity_with_scores(client_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    response = client_for(viewer).get(
        reverse("compounds:list"), {"q": "CCc1ccccc1", "mode": "similarity", "threshold": "0.3"}
    )
    body = response.content.decode()
    assert "Tanimoto" in body and "1.00" in body and "ethylbenzene" in body
    assert "cyclohexane" not in body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "C(", "mode": "substructure"}, "Invalid substructure: not a valid SMARTS or SMILES pattern"),
        ({"q": "C1CC", "mode": "similarity"}, "Invalid structure"),
        ({"q": "CCO", "mode": "similarity", "threshold": "7"}, "threshold"),
        ({"q": "CCO", "mode": "nonsense"}, "mode"),
    ],
)
def test_a_bad_search_is_explained_not_a_server_error(
    client_for: Any, viewer: Any, library: dict[str, Any], params: dict[str, str], message: str
) -> None:
    response = client_for(viewer).get(reverse("compounds:list"), params)
    body = response.content.decode()
    assert response.status_code == 200
    assert message in body and 'role="alert"' in body
    assert "toluene" not in body  # no results under an error


def test_the_pager_keeps_the_search(client_for: Any, viewer: Any, db: Any) -> None:
    for n in range(30):
        CompoundFactory(smiles="C" * (n + 2) + "O")
    body = client_for(viewer).get(reverse("compounds:list"), {"q": "CO", "mode": "substructure"}).content.decode()
    assert "30 matches" in body
    assert "?q=CO&amp;mode=substructure&amp;page=2" in body


# --- CSV download -----------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    return list(csv.reader(b"".join(response.streaming_content).decode("utf-8-sig").splitlines()))


def test_the_download_holds_what_the_search_found(client_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    export = reverse("compounds:export")
    rows = _csv(client_for(viewer).get(export, {"q": "C(=O)[OH]", "mode": "substructure"}))
    assert rows[0] == list(selectors.EXPORT_COLUMNS)
    assert [r[1] for r in rows[1:]] == ["acetic acid", "benzoic acid"]

    similar = _csv(client_for(viewer).get(export, {"q": "CCc1ccccc1", "mode": "similarity", "threshold": "0.3"}))
    assert similar[0][-1] == "similarity" and similar[1][1] == "ethylbenzene" and float(similar[1][-1]) == 1.0

    everything = _csv(client_for(viewer).get(export))
    assert len(everything) == 1 + 7 and everything[1][3] == library["acetic acid"].canonical_smiles


def test_a_bad_download_is_a_400_with_the_reason_and_cells_are_escaped(
    client_for: Any, viewer: Any, library: dict[str, Any]
) -> None:
    bad = client_for(viewer).get(reverse("compounds:export"), {"q": "C(", "mode": "substructure"})
    assert bad.status_code == 400 and "not a valid SMARTS or SMILES pattern" in bad.content.decode()
    CompoundFactory(smiles="CCCCCCCCCCO", name="=HYPERLINK(evil)")
    rows = _csv(client_for(viewer).get(reverse("compounds:export"), {"q": "HYPERLINK"}))
    assert rows[1][1] == "'=HYPERLINK(evil)"


def test_the_sdf_download_reads_back_into_rdkit_with_its_fields(
    client_for: Any, viewer: Any, library: dict[str, Any]
) -> None:
    CompoundFactory(smiles="CCCCCCCCCCCCO", name="two\nlines")
    params = {"q": "CCc1ccccc1", "mode": "similarity", "threshold": "0.3", "format": "sdf"}
    response = client_for(viewer).get(reverse("compounds:export"), params)
    assert response["Content-Type"] == "chemical/x-mdl-sdfile"
    supplier = Chem.SDMolSupplier()
    supplier.SetData(b"".join(response.streaming_content).decode())
    mols = list(supplier)
    assert all(m is not None for m in mols) and len(mols) == 2
    assert mols[0].GetProp("_Name") == "ethylbenzene" and float(mols[0].GetProp("similarity")) == 1.0
    assert Chem.MolToSmiles(mols[1]) == library["toluene"].canonical_smiles
    assert int(mols[1].GetProp("id")) == library["toluene"].pk
    everything = client_for(viewer).get(reverse("compounds:export"), {"format": "sdf"})
    fresh = Chem.SDMolSupplier()  # a reused supplier yields a stray None after SetData
    fresh.SetData(b"".join(everything.streaming_content).decode())
    names = [m.GetProp("_Name") for m in fresh]
    assert len(names) == 8 and names[-1] == "two lines"


def test_a_stored_name_with_line_breaks_cannot_inject_an_sdf_record(client_for: Any, viewer: Any) -> None:
    # Stored before names were made one line at input (the factory writes the row as given).
    CompoundFactory(smiles="CCCCO", name="SDF evil\n$$$$\nINJECTED\n>  <inchikey>\nFAKE")
    body = b"".join(client_for(viewer).get(reverse("compounds:export"), {"format": "sdf"}).streaming_content).decode()
    supplier = Chem.SDMolSupplier()
    supplier.SetData(body)
    mols = list(supplier)
    assert len(mols) == 1 and mols[0].GetProp("inchikey") != "FAKE"
    assert mols[0].GetProp("name") == "SDF evil $$$$ INJECTED > <inchikey> FAKE"


def test_an_sdf_download_over_its_cap_is_refused_with_the_way_out(
    client_for: Any, viewer: Any, library: dict[str, Any], settings: Any
) -> None:
    settings.CHEMLOOP_SDF_EXPORT_MAX = 3
    too_many = client_for(viewer).get(reverse("compounds:export"), {"format": "sdf"})
    assert too_many.status_code == 400 and "at most 3 compounds; this search has 7" in too_many.content.decode()
    acids = client_for(viewer).get(reverse("compounds:export"), {"format": "sdf", "q": "C(=O)[OH]", "mode": "substructure"})
    assert acids.status_code == 200 and b"".join(acids.streaming_content).count(b"$$$$") == 2


def test_the_list_links_to_the_download_of_the_same_search(client_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    body = client_for(viewer).get(reverse("compounds:list"), {"q": "c1ccccc1", "mode": "substructure"}).content.decode()
    assert reverse("compounds:export") + "?q=c1ccccc1&amp;mode=substructure" in body
    assert reverse("compounds:export") + "?q=c1ccccc1&amp;mode=substructure&amp;format=sdf" in body


def test_a_downloaded_csv_is_utf8_for_excel_and_imports_back(client_for: Any, viewer: Any, db: Any) -> None:
    import io

    from compounds import services

    CompoundFactory(smiles="CCCCCCCCCCCO", name="Ünlöslich µM")
    response = client_for(viewer).get(reverse("compounds:export"))
    raw = b"".join(response.streaming_content)
    assert response["Content-Type"] == "text/csv; charset=utf-8" and raw.startswith("\ufeffid,".encode())
    report = services.compounds_import(
        stream=io.BytesIO(raw), filename="compounds.csv", dataset_name="again",
        smiles_column="canonical_smiles", name_column="name",
    )
    assert (report.existing, report.invalid, report.non_utf8_bytes) == (1, 0, 0)
