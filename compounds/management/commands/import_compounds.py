import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from compounds import services
from compounds.models import TaskType
from config.exceptions import ApplicationError
from config.jobs import wait_in_process


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
        parser.add_argument(
            "--task", choices=TaskType.values, default=None,
            help="task type of a new assay (default regression; an existing assay keeps its own)",
        )
        parser.add_argument(
            "--class", dest="class_names", action="append", metavar="NAME",
            help="a class name of a new classification assay, once per class in order; "
            "a name may contain commas and spaces",
        )
        parser.add_argument(
            "--classes", metavar="A,B,C",
            help='simple class names separated by commas, no spaces after them ("low,medium,high"); '
            "use --class for names with commas",
        )
        parser.add_argument("--processes", type=int, default=None)
        parser.add_argument(
            "--properties", choices=["auto", "inline", "deferred"], default="auto",
            help="auto: inline for small files, deferred to enrichment jobs for big ones",
        )
        parser.add_argument(
            "--enrich", choices=["auto", "now", "jobs", "skip"], default="auto",
            help="deferred properties: compute them now in this process, enqueue jobs for the RQ workers, "
            "or skip (auto: jobs when REDIS_URL is set, now otherwise)",
        )
        parser.add_argument("--max-issues", type=int, default=50, help="row issues to print (all are counted)")

    def handle(self, *args: object, **opts: object) -> None:
        path = Path(str(opts["file"]))
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        new_assay = None
        if opts["assay"]:
            # Made inside the import's transaction: a refused file leaves no assay behind.
            classes = _class_names(opts["class_names"], opts["classes"])
            new_assay = {
                "name": str(opts["assay"]), "units": str(opts["units"]), "classes": classes,
                "task_type": opts["task"] or (TaskType.CLASSIFICATION if classes else None),
            }
        elif opts["value_column"]:
            raise CommandError("--value-column needs --assay")
        bar = tqdm(unit=" rows", disable=not self.stdout.isatty() and opts["verbosity"] < 2)
        try:
            report = services.compounds_import_path(
                path=path,
                dataset_name=str(opts["dataset"]),
                new_assay=new_assay,
                value_column=opts["value_column"] or None,
                smiles_column=opts["smiles_column"] or None,
                name_column=opts["name_column"] or None,
                processes=opts["processes"],  # type: ignore[arg-type]
                progress=bar.update,
                properties=str(opts["properties"]),
                # Deferred properties are this command's own business (--enrich); the follow-ups
                # of new compounds (stored features, substructure screen) are queued like any import's.
                enqueue_enrichment=False,
                enqueue_followups=True,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        if new_assay and new_assay["classes"] and not report.assay_removed:
            self.stdout.write(f"assay {new_assay['name']!r}: classes {services.classes_text(new_assay['classes'])}")
        self.stdout.write(
            f"{report.total_rows} rows: {report.created} new, {report.existing} already registered, "
            f"{report.duplicates_in_file} duplicates in file, {report.invalid} rejected, "
            f"{report.measurements_created} measurements added, {report.values_skipped} registered without a value "
            f"→ dataset {report.dataset_name!r}"
        )
        if report.assay_removed:
            self.stdout.write(
                self.style.WARNING(
                    f"no value of the file could be stored, so the new assay {new_assay['name']!r} was not created "  # type: ignore[index]
                    "(see the row issues)"
                )
            )
        if report.non_utf8_bytes:
            self.stdout.write(
                self.style.WARNING(
                    f"the file is not UTF-8: {report.non_utf8_bytes} bytes were read as Windows-1252"
                )
            )
        if report.background_jobs_not_queued:
            self.stdout.write(self.style.WARNING("the job queue was unreachable: background follow-ups wait for the next import"))
        if report.properties_deferred:
            self._enrich(str(opts["enrich"]))
        for issue in report.issues[: int(opts["max_issues"])]:  # type: ignore[call-overload]
            where = "record" if Path(path.name.lower().removesuffix(".gz")).suffix in (".sdf", ".sd") else "line"
            self.stdout.write(f"  {where} {issue.row}: {issue.reason}: {issue.input}")
        if len(report.issues) > int(opts["max_issues"]):  # type: ignore[call-overload]
            self.stdout.write(f"  … {len(report.issues) - int(opts['max_issues'])} more issues")  # type: ignore[call-overload]
        # Without Redis the follow-ups run on this process's job threads (config.jobs):
        # wait for them, or the command's exit would cut them off.
        wait_in_process()

    def _enrich(self, mode: str) -> None:
        from django.conf import settings
        from django.db.models import Max, Min

        from compounds.models import Compound

        if mode == "auto":
            mode = "now" if settings.JOBS_IN_PROCESS else "jobs"
        if mode == "skip":
            self.stdout.write("properties left empty (--enrich skip); fill them later with the enrichment jobs")
        elif mode == "jobs":
            n = services.compounds_enrich_enqueue()
            self.stdout.write(f"properties: {n} enrichment job(s) enqueued for the RQ workers")
        else:
            bounds = Compound.objects.filter(mw__isnull=True).aggregate(lo=Min("id"), hi=Max("id"))
            if bounds["lo"] is None:
                return
            step = services.ENRICH_CHUNK
            with tqdm(total=bounds["hi"] - bounds["lo"] + 1, unit=" ids", desc="properties") as bar:
                for start in range(bounds["lo"], bounds["hi"] + 1, step):
                    services.compounds_enrich_range(id_from=start, id_to=start + step)
                    bar.update(min(step, bounds["hi"] + 1 - start))


def _class_names(repeated: object, joined: object) -> list[str] | None:
    """Class names from --class NAME (each exact) or --classes "a,b,c" (split on commas).

    "soluble, yes ✓,insoluble" split on commas is three classes, which is rarely what was
    meant: a comma followed by a space reads as part of a name, so that spelling is refused
    and --class named, rather than silently creating the wrong classes.
    """
    if repeated and joined:
        raise CommandError("give the classes with --class NAME (repeated) or with --classes, not both")
    if repeated:
        return [str(name).strip() for name in repeated]  # type: ignore[attr-defined]
    if not joined:
        return None
    text = str(joined)
    parts = [part.strip() for part in text.split(",")]
    if re.search(r",\s", text):
        raise CommandError(
            f"--classes {text!r} splits on commas into {len(parts)} classes {services.classes_text(parts)}; "
            "if a name contains a comma give each name with --class NAME, otherwise write the names "
            'without spaces after the commas ("low,medium,high")'
        )
    return parts
