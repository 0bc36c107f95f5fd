import json

import numpy as np
import pytest

from mlmodels.ml import features, presets
from mlmodels.ml.ensemble import BootstrapEnsemble


def test_presets_are_json_and_name_known_specs() -> None:
    for preset in presets.PRESETS.values():
        json.dumps(preset)
        features.FeatureSpec.from_dict(preset["featurizer"])
    assert presets.HIT_FINDING["featurizer"] == features.HIT_FINDING_SPEC.to_dict()
    assert features.SPECS["hit_finding"] is features.HIT_FINDING_SPEC
    # Hit finding keeps the settings it was benchmarked with: no all-rows share in its kernel parts.
    assert presets.HIT_FINDING["hyperparameters"]["smooth_all_rows"] == 0.0


@pytest.mark.parametrize(("side", "flat_end"), [("high", "max"), ("low", "min")])
def test_target_clip_flattens_the_non_hit_tail(side: str, flat_end: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = X[:, 0] * 3
    # learning_rate pinned to the pre-2026-11-29 default this test was written with: the
    # "nothing beyond the level" check relies on 50 rounds at 0.06 not overshooting.
    # Trees only: the kernel-ridge half may overshoot the level a little (see its own test).
    ens = BootstrapEnsemble(
        n_members=2, n_estimators=50, learning_rate=0.06, target_clip_quantile=0.5, target_clip_side=side,
        smooth_weight=0.0,
    ).fit(X, y)
    level = float(np.quantile(y.astype(np.float32), 0.5))
    assert ens.target_clip_ == pytest.approx(level)
    pred = ens.predict(X, return_members=False).mean
    # Nothing is predicted beyond the clip level on the flattened side.
    if flat_end == "max":
        assert pred.max() <= level + 1e-4
    else:
        assert pred.min() >= level - 1e-4


def test_target_clip_off_by_default_and_checked() -> None:
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20, dtype=np.float32)
    assert BootstrapEnsemble(n_members=1, n_estimators=5).fit(X, y).target_clip_ is None
    with pytest.raises(ValueError, match="target_clip_quantile"):
        BootstrapEnsemble(n_members=1, n_estimators=5, target_clip_quantile=1.5).fit(X, y)
