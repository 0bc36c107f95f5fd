from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from compounds import services
from compounds.models import TaskType
from config.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Import compounds from a CSV/TSV/SDF/SMI file (optionally .gz) into a dataset, with a per-row report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--assay", help="assay the value column belongs to (created if missing)")
        parser.add_argument("--value-column")
        parser.add_argument("--smiles-column")
        parser.add_argument("--name-column")
        parser.add_argument("--units", default="")
        parser.add_argument("--task", choices=TaskType.values, default=TaskType.REGRESSION)
        parser.add_argument("--classes", help="comma-separated class names, in order (classification)")
        parser.add_argument("--processes", type=int, default=None)
        parser.add_argument("--max-issues", type=int, default=50, help="row issues to print (all are counted)")

    def handle(self, *args: object, **opts: object) -> None:
        path = Path(str(opts["file"]))
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        assay = None
        if opts["assay"]:
            classes = [c.strip() for c in str(opts["classes"]).split(",")] if opts["classes"] else None
            assay = services.assay_get_or_create(
                name=str(opts["assay"]), task_type=str(opts["task"]), units=str(opts["units"]), classes=classes
            )
        elif opts["value_column"]:
            raise CommandError("--value-column needs --assay")
        bar = tqdm(unit=" rows", disable=not self.stdout.isatty() and opts["verbosity"] < 2)
        try:
            report = services.compounds_import_path(
                path=path,
                dataset_name=str(opts["dataset"]),
                assay=assay,
                value_column=opts["value_column"] or None,
                smiles_column=opts["smiles_column"] or None,
                name_column=opts["name_column"] or None,
                processes=opts["processes"],  # type: ignore[arg-type]
                progress=bar.update,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        self.stdout.write(
            f"{report.total_rows} rows: {report.created} new, {report.existing} already registered, "
            f"{report.duplicates_in_file} duplicates in file, {report.invalid} rejected, "
            f"{report.measurements_created} measurements added → dataset {report.dataset_name!r}"
        )
        for issue in report.issues[: int(opts["max_issues"])]:  # type: ignore[call-overload]
            self.stdout.write(f"  row {issue.row}: {issue.reason}: {issue.input}")
        if len(report.issues) > int(opts["max_issues"]):  # type: ignore[call-overload]
            self.stdout.write(f"  … {len(report.issues) - int(opts['max_issues'])} more issues")  # type: ignore[call-overload]
