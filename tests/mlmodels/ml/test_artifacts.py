from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from mlmodels.ml import artifacts
from mlmodels.ml.artifacts import ArtifactError, ArtifactFormatError, load_artifact, save_artifact
from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.features import FeatureSpec


@pytest.fixture(scope="module")
def fitted() -> tuple[BootstrapEnsemble, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    model = BootstrapEnsemble(n_members=2, n_estimators=10).fit(X, X[:, 0])
    return model, X


def test_an_artifact_round_trips(tmp_path: Path, fitted: tuple[BootstrapEnsemble, np.ndarray]) -> None:
    model, X = fitted
    spec = FeatureSpec(name="props", morgan="none", descriptors="props")
    path = save_artifact(
        tmp_path / "models" / "m1.joblib",
        model,
        feature_spec=spec,
        training_ids=[3, 1, 2],
        metrics={"rmse": 0.5},
        extra={"assay": "solubility"},
    )
    art = load_artifact(path)
    assert art.feature_spec == spec
    assert art.training_ids == [3, 1, 2]
    assert art.metrics == {"rmse": 0.5}
    assert art.extra == {"assay": "solubility"}
    assert art.format_version == artifacts.FORMAT_VERSION
    assert set(art.library_versions) == {"numpy", "scikit-learn", "xgboost", "rdkit"}
    assert art.version_warnings() == []
    np.testing.assert_array_equal(art.ensemble.predict(X).mean, model.predict(X).mean)
    # Atomic write: no temp file left next to the artifact.
    assert [p.name for p in path.parent.iterdir()] == ["m1.joblib"]


def test_a_different_format_version_asks_for_a_retrain(
    tmp_path: Path, fitted: tuple[BootstrapEnsemble, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.joblib"
    monkeypatch.setattr(artifacts, "FORMAT_VERSION", 0)
    save_artifact(path, fitted[0], feature_spec=FeatureSpec(), training_ids=[], metrics={})
    monkeypatch.undo()
    with pytest.raises(ArtifactFormatError, match="retrain"):
        load_artifact(path)


def test_a_corrupt_file_is_an_artifact_error(
    tmp_path: Path, fitted: tuple[BootstrapEnsemble, np.ndarray]
) -> None:
    path = save_artifact(
        tmp_path / "m.joblib", fitted[0], feature_spec=FeatureSpec(), training_ids=[], metrics={}
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="corrupt"):
        load_artifact(path)


def test_a_missing_or_foreign_file_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nope.joblib")
    joblib.dump({"something": "else"}, tmp_path / "foreign.joblib")
    with pytest.raises(ArtifactError, match="not a chemloop model"):
        load_artifact(tmp_path / "foreign.joblib")


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = BootstrapEnsemble(n_members=1, n_estimators=2).fit(np.eye(4, dtype=np.float32), np.arange(4.0))

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.joblib, "dump", boom)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(tmp_path / "m.joblib", model, feature_spec=FeatureSpec(), training_ids=[], metrics={})
    assert list(tmp_path.iterdir()) == []
