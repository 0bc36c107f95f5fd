import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.exceptions import ApplicationError
from cycles.services import simulate as sim
from cycles.strategies import STRATEGIES


class Command(BaseCommand):
    help = (
        "Replay a data set with known labels through the real services (select → label → retrain) and write "
        "a learning curve CSV + PNG (mean ± sd over seeds, random as baseline)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", default=str(settings.BASE_DIR / "compounds" / "fixtures" / "solubility.csv"),
                            help="CSV(.gz) with a SMILES column and the value column")
        parser.add_argument("--assay", "--value-column", dest="value_column", default="logS")
        parser.add_argument("--task", choices=["regression", "classification"], default="regression")
        parser.add_argument("--mode", choices=["improve", "find"], default="improve")
        parser.add_argument("--direction", choices=["maximize", "minimize"], default="maximize",
                            help="find mode: which end of the value scale is a hit")
        parser.add_argument("--strategy", action="append", dest="strategies",
                            help="repeatable; default: random + uncertainty")
        parser.add_argument("--params", default="{}", help='JSON: {"strategy": {param: value}}; a "strategy" key makes the name a label for a '
                                 'tuned variant, e.g. {"unc_ranked": {"strategy": "uncertainty", "batch": "ranked_batch"}}')
        parser.add_argument("--cycles", type=int, default=20)
        parser.add_argument("--batch-size", type=float, default=25, help="count, or a fraction (<1) of the pool")
        parser.add_argument("--initial", type=float, default=50, help="count, or a fraction (<1) of the pool")
        parser.add_argument("--seeds", type=int, default=5)
        parser.add_argument("--first-seed", type=int, default=0,
                            help="seeds are first-seed .. first-seed + seeds - 1 (run seeds in parallel processes)")
        parser.add_argument("--top-k", type=int, default=None, help="find mode: size of the true top set")
        parser.add_argument("--members", type=int, default=10)
        parser.add_argument("--algorithm", choices=["xgboost", "rf"], default="xgboost")
        parser.add_argument("--hyperparameters", default="{}", help="JSON")
        parser.add_argument("--featurizer", default="", help="JSON FeatureSpec; default: the product default")
        parser.add_argument("--out", default="docs/benchmarks/simulation", help="output prefix (.csv, .png, .json)")
        parser.add_argument("--keep", action="store_true",
                            help="keep each run's assay, model versions, cycles, queue items and labels in the "
                                 "database (default: deleted once the run is recorded)")

    def handle(self, *args: object, **opts: object) -> None:
        path = Path(str(opts["data"]))
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            params = json.loads(str(opts["params"]))
            hyper = json.loads(str(opts["hyperparameters"]))
            featurizer = json.loads(str(opts["featurizer"])) if opts["featurizer"] else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"invalid JSON option: {exc}") from exc
        config = sim.SimulationConfig(
            path=path,
            mode=str(opts["mode"]),
            value_column=str(opts["value_column"]),
            task=str(opts["task"]),
            direction=str(opts["direction"]),
            strategies=list(opts["strategies"] or ["random", "uncertainty"]),  # type: ignore[call-overload]
            strategy_params=params,
            seeds=list(range(int(opts["first_seed"]), int(opts["first_seed"]) + int(opts["seeds"]))),  # type: ignore[call-overload]
            initial=float(opts["initial"]),  # type: ignore[arg-type]
            batch_size=float(opts["batch_size"]),  # type: ignore[arg-type]
            cycles=int(opts["cycles"]),  # type: ignore[call-overload]
            top_k=opts["top_k"],  # type: ignore[arg-type]
            algorithm=str(opts["algorithm"]),
            n_members=int(opts["members"]),  # type: ignore[call-overload]
            hyperparameters=hyper,
            featurizer=featurizer,
            keep=bool(opts["keep"]),
        )
        self._check(config)
        try:
            rows = sim.simulate(config, log=self.stdout.write)
        except (ValueError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        lower = config.mode == "improve" and config.task == "regression"
        summary = sim.summarize(rows, lower_is_better=lower)
        out = Path(str(opts["out"]))
        sim.write_csv(rows, out.with_suffix(".csv"))
        metric = rows[0].metric if rows else "metric"
        sim.plot(summary, out.with_suffix(".png"), title=f"{path.name}: {metric} vs labels", ylabel=metric)
        out.with_suffix(".json").write_text(json.dumps({"config": {k: str(v) for k, v in vars(config).items()},
                                                        "summary": summary}, indent=2))
        for strategy, s in summary["strategies"].items():
            self.stdout.write(
                f"{strategy:>22}: {metric} {sim.fmt(s['final_mean'])} ± {sim.fmt(s['final_sd'])} at "
                f"{s['final_labels']:.0f} labels; reaches random's final at {s['labels_to_reach_random_final']}; "
                f"area {sim.fmt(s['normalized_area'])}"
            )
        self.stdout.write(self.style.SUCCESS(f"wrote {out.with_suffix('.csv')}, .png, .json"))

    @staticmethod
    def _check(config: sim.SimulationConfig) -> None:
        """Refuse bad arguments before anything is imported or trained."""
        for name in config.strategies:
            base = (config.strategy_params.get(name) or {}).get("strategy", name)
            if base not in STRATEGIES:
                raise CommandError(f"unknown strategy {base!r}; choose from {', '.join(STRATEGIES)}")
        for option, value in (("--initial", config.initial), ("--batch-size", config.batch_size)):
            if not value > 0:
                raise CommandError(f"{option} must be a count or a fraction above 0, got {value:g}")
        for option, value in (("--cycles", config.cycles), ("--seeds", len(config.seeds)), ("--members", config.n_members)):
            if value < 1:
                raise CommandError(f"{option} must be at least 1")
