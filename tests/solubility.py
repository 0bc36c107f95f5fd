"""A small slice of the solubility fixture as a real assay + model, for service tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from compounds import services as compound_services
from compounds.models import Assay, Compound
from mlmodels import services as model_services

FIXTURE = Path(__file__).resolve().parent.parent / "compounds" / "fixtures" / "solubility.csv"
# Small, fast ensembles: the tests check behaviour, bench/ checks quality.
FAST = {"n_estimators": 40, "max_depth": 4, "learning_rate": 0.2}


def fixture_rows(limit_train: int, limit_test: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with FIXTURE.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    train = [r for r in rows if r["split"] == "train"][:limit_train]
    test = [r for r in rows if r["split"] == "test"][:limit_test]
    return train, test


def import_rows(rows: list[dict[str, str]], *, dataset: str, assay: Assay | None = None) -> list[int]:
    buffer = io.StringIO()
    w = csv.writer(buffer)
    w.writerow(["name", "smiles", "logS"])
    w.writerows((r["name"], r["smiles"], r["logS"]) for r in rows)
    report = compound_services.compounds_import(
        stream=io.BytesIO(buffer.getvalue().encode()),
        filename="rows.csv",
        dataset_name=dataset,
        assay=assay,
        value_column="logS" if assay else None,
        processes=1,
    )
    return list(Compound.objects.filter(datasets__pk=report.dataset_id).values_list("id", flat=True))


def solubility_setup(*, labeled: int = 60, pool: int = 60, validation: int = 30, **model_kwargs: Any) -> dict[str, Any]:
    """Assay with `labeled` measured train compounds, `pool` unlabeled ones and a validation set."""
    train, test = fixture_rows(labeled + pool, validation)
    assay = compound_services.assay_get_or_create(name="logS (test)", units="log mol/L")
    import_rows(train[:labeled], dataset="labeled", assay=assay)
    val_ids = import_rows(test, dataset="validation", assay=assay)
    pool_ids = import_rows(train[labeled:], dataset="pool")
    truth = {}
    for r in train[labeled:]:
        from compounds import chemistry

        try:
            key = chemistry.process_smiles(r["smiles"]).inchikey
        except chemistry.ChemistryError:
            continue
        truth[key] = float(r["logS"])
    values = {c.pk: truth[c.inchikey] for c in Compound.objects.filter(id__in=pool_ids) if c.inchikey in truth}
    model = model_services.model_create_initial(
        assay=assay,
        name=model_kwargs.pop("name", "Solubility test"),
        validation_compound_ids=val_ids,
        n_members=model_kwargs.pop("n_members", 3),
        hyperparameters=model_kwargs.pop("hyperparameters", FAST),
        **model_kwargs,
    )
    return {"assay": assay, "model": model, "validation_ids": val_ids, "pool_ids": pool_ids, "truth": values}
