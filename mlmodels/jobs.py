"""RQ jobs of the models app: take ids/plain values, call one service."""

from __future__ import annotations

from typing import Any

from mlmodels import services
from mlmodels.ml.features import FeatureSpec


def compute_features_range(spec: dict[str, Any], id_from: int, id_to: int) -> int:
    """Store the features `spec` needs for compounds with id_from <= id < id_to."""
    return services.compound_features_backfill_range(spec=FeatureSpec.from_dict(spec), id_from=id_from, id_to=id_to)
