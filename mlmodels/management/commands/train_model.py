from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from compounds.models import Assay, Compound
from config.exceptions import ApplicationError
from mlmodels import services


class Command(BaseCommand):
    help = "Train version 1 of a model lineage on an assay, with a frozen validation set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--assay", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--algorithm", choices=["xgboost", "rf"], default="xgboost")
        parser.add_argument("--members", type=int, default=10)
        parser.add_argument(
            "--validation-split",
            help="use the compounds of this dataset as the validation set (e.g. 'Solubility test split'); "
            "default: a seeded random fraction",
        )
        parser.add_argument("--validation-fraction", type=float, default=0.2)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--preset", choices=["model_improvement", "hit_finding"],
            help="featurizer and ensemble settings chosen by the benchmarks for this goal",
        )

    def handle(self, *args: object, **opts: object) -> None:
        assay = Assay.objects.filter(name=opts["assay"]).first()
        if assay is None:
            raise CommandError(f"No assay named {opts['assay']!r}")
        validation_ids = None
        if opts["validation_split"]:
            validation_ids = list(
                Compound.objects.filter(datasets__name=opts["validation_split"]).values_list("id", flat=True)
            )
            if not validation_ids:
                raise CommandError(f"No dataset named {opts['validation_split']!r} (or it is empty)")
        # Percent of the job, not a rate: no "%/s" or time estimate in the bar.
        bar = tqdm(total=100, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

        def progress(stage: str, percent: int) -> None:
            bar.set_description(stage)
            bar.update(max(0, percent - bar.n))

        try:
            model = services.model_create_initial(
                assay=assay,
                name=str(opts["name"]),
                validation_compound_ids=validation_ids,
                validation_fraction=float(opts["validation_fraction"]),  # type: ignore[arg-type]
                seed=int(opts["seed"]),  # type: ignore[call-overload]
                algorithm=str(opts["algorithm"]),
                n_members=int(opts["members"]),  # type: ignore[call-overload]
                progress=progress,
                preset=opts["preset"],  # type: ignore[arg-type]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        shown = {k: v for k, v in model.metrics.items() if not isinstance(v, list)}
        self.stdout.write(self.style.SUCCESS(f"{model} trained on {model.training_size} compounds: {shown}"))
