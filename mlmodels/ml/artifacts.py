"""Model artifacts: one joblib file per trained model version.

The file holds the fitted ensemble plus what is needed to trust it later: a format
version, the library versions it was trained with, the feature settings, the ids of
the training compounds and the validation metrics. It is written atomically (temp
file in the same directory + os.replace) so a reader never sees a half-written
model, and a format mismatch is reported as "retrain", never as an unpickling crash.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import rdkit
import sklearn
import xgboost

from .ensemble import BootstrapEnsemble
from .features import FeatureSpec

# Bump when the stored structure, the ensemble class or the feature layout changes
# incompatibly; old artifacts then ask for a retrain.
# 2: regression ensembles carry the smooth (kernel ridge) half: basis_, smooth_coef_, ...
FORMAT_VERSION = 2
_MAGIC = "chemloop-model-artifact"


class ArtifactError(Exception):
    """The artifact file is missing, unreadable or not a chemloop model."""


class ArtifactMissingError(ArtifactError):
    """No file at the artifact's path (often a storage volume this process does not see)."""


class ArtifactFormatError(ArtifactError):
    """The artifact was written by an incompatible format version: retrain the model."""


def library_versions() -> dict[str, str]:
    return {
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "rdkit": rdkit.__version__,
    }


@dataclass(slots=True)
class Artifact:
    ensemble: BootstrapEnsemble
    feature_spec: FeatureSpec
    training_ids: list[int]
    metrics: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    library_versions: dict[str, str] = field(default_factory=library_versions)
    created_at: str = ""

    def version_warnings(self) -> list[str]:
        """Libraries whose version differs from the one the model was trained with."""
        now = library_versions()
        return [
            f"{lib} {then} at training, {now.get(lib)} now"
            for lib, then in self.library_versions.items()
            if now.get(lib) != then
        ]


def save_artifact(
    path: str | os.PathLike[str],
    ensemble: BootstrapEnsemble,
    *,
    feature_spec: FeatureSpec,
    training_ids: Sequence[int],
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the artifact atomically; returns the final path."""
    if not hasattr(ensemble, "members_"):
        raise ArtifactError("refusing to save an unfitted ensemble")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(),
        "feature_spec": feature_spec.to_dict(),
        "training_ids": [int(i) for i in training_ids],
        "metrics": metrics,
        "extra": extra or {},
        "ensemble": ensemble,
    }
    # Same directory as the target, so os.replace is a rename on one filesystem
    # (atomic), never a copy.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            joblib.dump(payload, fh, compress=3)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def load_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Read an artifact; ArtifactError if missing/corrupt, ArtifactFormatError if outdated."""
    source = Path(path)
    if not source.is_file():
        raise ArtifactMissingError(f"model artifact {source} does not exist")
    try:
        payload = joblib.load(source)
    except Exception as exc:
        raise ArtifactError(
            f"model artifact {source} is unreadable or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
        raise ArtifactError(f"{source} is not a chemloop model artifact")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactFormatError(
            f"model artifact {source} has format version {version}, this code reads version "
            f"{FORMAT_VERSION}: retrain the model to use it"
        )
    try:
        return Artifact(
            ensemble=payload["ensemble"],
            feature_spec=FeatureSpec.from_dict(payload["feature_spec"]),
            training_ids=list(payload["training_ids"]),
            metrics=dict(payload["metrics"]),
            extra=dict(payload["extra"]),
            format_version=version,
            library_versions=dict(payload["library_versions"]),
            created_at=str(payload["created_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"model artifact {source} is incomplete ({exc}); retrain the model") from exc
