from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from mlmodels import services
from mlmodels.ml.features import DEFAULT_SPEC


class Command(BaseCommand):
    help = (
        "Store the default featurizer's per-compound features, and the physico-chemical prior's columns with them, "
        "wherever they are missing or stale (after an upgrade, or for compounds registered while Redis was down): "
        "as chunked jobs for the RQ workers, or in this process with --now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", action="store_true", help="compute here, with a progress bar, instead of queueing jobs")

    def handle(self, *args: object, **opts: object) -> None:
        # Without Redis the jobs would run on this process's threads, which end with it.
        if opts["now"] or settings.JOBS_IN_PROCESS:
            ranges = services.compound_features_backfill_ranges(spec=DEFAULT_SPEC)
            done = 0
            for start, stop in tqdm(ranges, desc="id ranges", unit="range", disable=not ranges):
                done += services.compound_features_backfill_range(spec=DEFAULT_SPEC, id_from=start, id_to=stop)
            self.stdout.write(f"Stored features or prior columns for {done:,} compounds.")
            return
        jobs = services.compound_features_backfill_enqueue(spec=DEFAULT_SPEC)
        if jobs:
            self.stdout.write(f"Queued {jobs} job(s), one per id range; `manage.py rqworker default` runs them.")
        else:
            self.stdout.write("Every compound has its stored features and prior columns: nothing queued.")
