"""Demo data for `make run`: users per role, the solubility data set, its assays."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compounds import services as compound_services
from compounds.models import Assay, Compound, TaskType
from mlmodels import services as model_services
from mlmodels.models import MLModel

DEMO_PASSWORD = "chemloop-demo"
DEMO_USERS = {"viewer": "viewer", "scientist": "scientist", "lead": "lead"}
FIXTURE = Path(__file__).resolve().parent.parent / "compounds" / "fixtures" / "solubility.csv"
DATASET = "Solubility (Huuskonen)"
REGRESSION_ASSAY = "Aqueous solubility (logS)"
CLASS_ASSAY = "Solubility class"
SOLUBILITY_CLASSES = ["(A) low", "(B) medium", "(C) high"]
TEST_SPLIT_DATASET = "Solubility test split"
DEMO_MODEL = "Solubility"
DEMO_SEED = 7
# Initial labeled train compounds; the rest of the train split is the demo pool.
INITIAL_LABELS = 300


def demo_users_create() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for username, role in DEMO_USERS.items():
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
        if created or not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
        # Leads use Django admin; the admin site itself checks the lead role.
        user.is_staff = role == "lead"
        user.save()
        user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return users


@transaction.atomic
def demo_data_create(*, log: Callable[[str], None] = print) -> dict[str, object]:
    users = demo_users_create()
    log(f"users: {', '.join(users)} (password {DEMO_PASSWORD!r})")
    logs = compound_services.assay_get_or_create(
        name=REGRESSION_ASSAY, task_type=TaskType.REGRESSION, units="log mol/L",
        # Aqueous solubility in log mol/L: water-miscible liquids reach ≈ +1.5, the least
        # soluble organics ≈ −12; anything outside is a typo or a value in other units.
        min_value=-15.0, max_value=3.0,
    )
    if logs.direction != "maximize":
        logs.direction = "maximize"
        logs.save(update_fields=["direction"])
    classes = compound_services.assay_get_or_create(
        name=CLASS_ASSAY, task_type=TaskType.CLASSIFICATION, classes=SOLUBILITY_CLASSES
    )
    rows = _fixture_rows()
    # The registry gets every compound; the logS assay gets the test split (the frozen
    # validation set) and a seeded sample of the train split as initial labels. The rest
    # of the train split is the unlabeled pool the demo's active-learning loop draws on.
    report = _import_rows(rows, dataset=DATASET)
    log(f"{DATASET}: {report.created} new compounds, {report.existing} existing, {report.invalid} rejected rows")
    rng = random.Random(DEMO_SEED)
    train = [r for r in rows if r["split"] == "train"]
    initial = rng.sample(train, min(INITIAL_LABELS, len(train)))
    labeled = [r for r in rows if r["split"] == "test"] + initial
    report = _import_rows(labeled, dataset=DATASET, assay=logs, column="logS")
    repeats = report.duplicates_in_file
    log(
        f"{logs.name}: {report.measurements_created} measurements added (test split + {len(initial)} initial train "
        "labels; none when the demo data is already there"
        + (
            f"; {repeats} of those rows {'repeats' if repeats == 1 else 'repeat'} a structure already in the file — "
            "the fixture's SMILES carry no stereochemistry, so e.g. hyoscyamine (train) is atropine (test): one "
            "compound, each value kept)"
            if repeats
            else ")"
        )
    )
    report = _import_rows(rows, dataset=DATASET, assay=classes, column="solubility_class")
    log(f"{classes.name}: {report.measurements_created} measurements")
    test_ids = demo_test_split_ids()
    log(f"{TEST_SPLIT_DATASET}: {len(test_ids)} compounds")
    # The import's follow-up jobs run in threads that end with this command; the demo's
    # substructure screen (~0.4 s) is computed here instead.
    screened = compound_services.compound_patterns_backfill_range(id_from=0, id_to=2**62)
    log(f"substructure screen: {screened} compounds")
    return {"users": users, "assays": [logs, classes], "test_ids": test_ids}


def _fixture_rows() -> list[dict[str, str]]:
    with FIXTURE.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _import_rows(
    rows: list[dict[str, str]], *, dataset: str, assay: Assay | None = None, column: str | None = None
) -> compound_services.ImportReport:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "smiles", "value"])
    writer.writerows((r["name"], r["smiles"], r[column] if column else "") for r in rows)
    return compound_services.compounds_import(
        stream=io.BytesIO(buffer.getvalue().encode()),
        filename="solubility.csv",
        dataset_name=dataset,
        assay=assay,
        value_column="value" if assay else None,
        processes=1,
        # The demo model's training stores the features it needs; no background threads.
        enqueue_enrichment=False,
    )


def demo_test_split_ids() -> list[int]:
    """The fixture's `split == test` compounds as a dataset (the fixed validation set)."""
    report = _import_rows([r for r in _fixture_rows() if r["split"] == "test"], dataset=TEST_SPLIT_DATASET)
    return list(Compound.objects.filter(datasets__pk=report.dataset_id).values_list("id", flat=True))


def demo_model_create(*, log: Callable[[str], None] = print) -> MLModel:
    """Train "Solubility" v1 on the demo data, validated on the fixture's test split."""
    existing = MLModel.objects.filter(name=DEMO_MODEL).order_by("-version").first()
    if existing is not None:
        log(f"model {existing} exists already")
        return existing
    model = model_services.model_create_initial(
        assay=demo_assay(),
        name=DEMO_MODEL,
        validation_compound_ids=demo_test_split_ids(),
    )
    shown = {k: v for k, v in model.metrics.items() if k in ("rmse", "r2", "n")}
    log(f"model {model} trained on {model.training_size} compounds; validation {shown}")
    return model


def demo_assay() -> Assay:
    return Assay.objects.get(name=REGRESSION_ASSAY)


def demo_cycle_open(*, log: Callable[[str], None] = print) -> None:
    """Open cycle 1 of the demo model with 20 hybrid-selected items (once)."""
    from cycles.models import ActiveLearningCycle
    from cycles.services import cycle_select

    model = MLModel.objects.get(name=DEMO_MODEL, status="active")
    if ActiveLearningCycle.objects.filter(model__name=DEMO_MODEL).exists():
        log("demo cycle exists already")
        return
    lead = get_user_model().objects.get(username="lead")
    result = cycle_select(model=model, user=lead, strategy="hybrid", batch_size=20, random_state=0)
    log(f"opened cycle {result.cycle.cycle_number} of {model} with {len(result.candidates)} queued items (hybrid)")
