from django.core.management.base import BaseCommand, CommandParser

from cycles.services import jobs_reconcile


class Command(BaseCommand):
    help = "Mark jobs whose worker died without reporting (killed, lost) as failed, with their cycles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stale-after", type=float, default=None, help="seconds without a heartbeat")

    def handle(self, *args: object, **opts: object) -> None:
        failed = jobs_reconcile(stale_after=opts["stale_after"])  # type: ignore[arg-type]
        for job in failed:
            self.stdout.write(f"job {job.pk} ({job.kind}) → failed: {job.error.splitlines()[0] if job.error else ''}")
        self.stdout.write(self.style.SUCCESS(f"{len(failed)} dead job(s) reconciled."))
