"""Framework-free ML for chemloop: features, bootstrap ensembles, metrics,
applicability domain, SHAP explanations and model artifacts.

Nothing in this package imports Django: services turn querysets into arrays
(packed fingerprints, stored feature vectors, labels) and call these functions.
"""

from .applicability import applicability_distance, max_tanimoto, nearest_training
from .artifacts import (
    FORMAT_VERSION,
    Artifact,
    ArtifactError,
    ArtifactFormatError,
    ArtifactMissingError,
    load_artifact,
    save_artifact,
)
from .ensemble import (
    BootstrapEnsemble,
    ClassificationPrediction,
    RegressionPrediction,
    predict_pool,
)
from .features import (
    DEFAULT_SPEC,
    SPECS,
    FeatureSpec,
    atom_bit_map,
    build_matrix,
    compute_stored_features,
    feature_names,
    featurize_mols,
    featurize_smiles,
    stored_from_bytes,
)
from .metrics import classification_metrics, is_better, primary_metric, regression_metrics

# explain imports shap (slow to import, ~1 s); import it lazily: `from mlmodels.ml.explain import explain_smiles`.

__all__ = [
    "DEFAULT_SPEC",
    "FORMAT_VERSION",
    "SPECS",
    "Artifact",
    "ArtifactError",
    "ArtifactFormatError",
    "ArtifactMissingError",
    "BootstrapEnsemble",
    "ClassificationPrediction",
    "FeatureSpec",
    "RegressionPrediction",
    "applicability_distance",
    "atom_bit_map",
    "build_matrix",
    "classification_metrics",
    "compute_stored_features",
    "feature_names",
    "featurize_mols",
    "featurize_smiles",
    "is_better",
    "load_artifact",
    "max_tanimoto",
    "nearest_training",
    "predict_pool",
    "primary_metric",
    "regression_metrics",
    "save_artifact",
    "stored_from_bytes",
]
