import sys
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compounds import chemistry
from config.csv_export import SafeWriter
from mlmodels.ml import applicability, artifacts, features
from mlmodels.ml.ensemble import RegressionPrediction
from mlmodels.models import MLModel


class Command(BaseCommand):
    help = (
        "Score a CSV/SDF/SMI file with a model artifact, offline: --artifact FILE (an exported artifact) "
        "or --name/--version (looked up in the registry). Writes CSV to stdout or --out."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: object) -> CommandParser:
        # `--version V` (as the issue names it) replaces Django's own --version flag.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)  # type: ignore[arg-type]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--artifact", help="path of an exported .joblib artifact")
        parser.add_argument("--name")
        parser.add_argument("--version", "--model-version", dest="model_version", type=int)
        parser.add_argument("--smiles-column")
        parser.add_argument("--out")

    def handle(self, *args: object, **opts: object) -> None:
        path = self._artifact_path(opts)
        try:
            art = artifacts.load_artifact(path)
        except artifacts.ArtifactError as exc:
            raise CommandError(str(exc)) from exc
        for warning in art.version_warnings():
            self.stderr.write(f"warning: {warning}")
        src = Path(str(opts["file"]))
        if not src.exists():
            raise CommandError(f"{src} does not exist")
        with src.open("rb") as fh:
            try:
                rows = list(chemistry.read_rows(fh, chemistry.detect_format(src.name), smiles_column=opts["smiles_column"]))  # type: ignore[arg-type]
            except chemistry.ChemistryError as exc:
                raise CommandError(str(exc)) from exc
        mols, keep, errors = [], [], {}
        for i, row in enumerate(rows):
            try:
                mols.append(chemistry.standardize(chemistry.parse_smiles(row.smiles or "")))
                keep.append(i)
            except chemistry.ChemistryError as exc:
                errors[i] = row.error or str(exc)
        classes = art.extra.get("classes") or []
        try:
            out_fh = open(str(opts["out"]), "w", newline="") if opts["out"] else sys.stdout  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot write {opts['out']}: {exc.strerror}") from exc
        try:
            writer = SafeWriter(out_fh)
            # predictive_std (regression): the spread calibrated on out-of-bag errors; ± 1.96 x it is a 95 % interval.
            header = ["row", "name", "smiles", "prediction", "uncertainty", "predictive_std", "applicability_distance"]
            writer.writerow(header + [f"p_{c}" for c in classes] + ["error"])
            pred = None
            if mols:
                X = features.featurize_mols(mols, art.feature_spec)
                pred = art.ensemble.predict(X, return_members=False)
                if isinstance(pred, RegressionPrediction):
                    predictive = art.ensemble.predictive_std(pred.std)
                train_fps = art.extra.get("training_fingerprints")
                dist = (
                    applicability.applicability_distance(features.packed_fingerprints(mols), train_fps)
                    if train_fps is not None
                    else np.full(len(mols), np.nan)
                )
            position = {row_i: k for k, row_i in enumerate(keep)}
            for i, row in enumerate(rows):
                if i in errors or pred is None:
                    writer.writerow([row.row, row.name, row.smiles, "", "", "", ""] + [""] * len(classes) + [errors.get(i, "")])
                    continue
                k = position[i]
                if isinstance(pred, RegressionPrediction):
                    values = [f"{pred.mean[k]:.4f}", f"{pred.std[k]:.4f}", f"{predictive[k]:.4f}"]
                    probs: list[str] = []
                else:
                    label = int(pred.labels[k])
                    values = [classes[label] if label < len(classes) else label, f"{pred.disagreement[k]:.4f}", ""]
                    probs = [f"{p:.4f}" for p in pred.proba[k]]
                writer.writerow([row.row, row.name, row.smiles, *values, f"{dist[k]:.4f}", *probs, ""])
        finally:
            if out_fh is not sys.stdout:
                out_fh.close()

    def _artifact_path(self, opts: dict) -> Path:  # type: ignore[type-arg]
        if opts["artifact"]:
            return Path(str(opts["artifact"]))
        if not opts["name"]:
            raise CommandError("give --artifact FILE or --name NAME [--version V]")
        qs = MLModel.objects.filter(name=opts["name"])
        model = qs.filter(version=opts["model_version"]).first() if opts["model_version"] else qs.filter(status="active").first()
        if model is None or not model.artifact:
            raise CommandError(f"no trained model {opts['name']!r} version {opts['model_version'] or '(active)'}")
        return Path(settings.ARTIFACT_ROOT) / model.artifact

