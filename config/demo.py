"""Demo data for `make run`: users per role, the solubility data set, its assays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compounds import services as compound_services
from compounds.models import Assay, TaskType

DEMO_PASSWORD = "chemloop-demo"
DEMO_USERS = {"viewer": "viewer", "scientist": "scientist", "lead": "lead"}
FIXTURE = Path(__file__).resolve().parent.parent / "compounds" / "fixtures" / "solubility.csv"
DATASET = "Solubility (Huuskonen)"
REGRESSION_ASSAY = "Aqueous solubility (logS)"
CLASS_ASSAY = "Solubility class"
SOLUBILITY_CLASSES = ["(A) low", "(B) medium", "(C) high"]


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
        name=REGRESSION_ASSAY, task_type=TaskType.REGRESSION, units="log mol/L"
    )
    if logs.direction != "maximize":
        logs.direction = "maximize"
        logs.save(update_fields=["direction"])
    classes = compound_services.assay_get_or_create(
        name=CLASS_ASSAY, task_type=TaskType.CLASSIFICATION, classes=SOLUBILITY_CLASSES
    )
    for assay, column in ((logs, "logS"), (classes, "solubility_class")):
        report = compound_services.compounds_import_path(
            path=FIXTURE, dataset_name=DATASET, assay=assay, value_column=column, processes=1
        )
        log(
            f"{assay.name}: {report.created} new compounds, {report.existing} existing, "
            f"{report.measurements_created} measurements, {report.invalid} rejected rows"
        )
    return {"users": users, "assays": [logs, classes]}


def demo_assay() -> Assay:
    return Assay.objects.get(name=REGRESSION_ASSAY)
