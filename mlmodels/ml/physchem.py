"""The melting-point prior: two physics columns appended to X inside an ensemble.

Why: the solubility model's worst errors are rigid, planar or symmetric solids whose low
solubility comes from a high melting point (crystal packing), which no 2-D descriptor
encodes (BENCHMARKS.md, "Model quality"). Yalkowsky's general solubility equation (GSE),

    log S = 0.5 - 0.01 (Tm - 25 °C) - log P          (the Tm term is 0 for liquids)

says how melting point and lipophilicity combine. A compound's own melting point is rarely
measured, so a small XGBoost booster learns it from 10,116 measured melting points of
*other* compounds (the Jean-Claude Bradley Open Melting Point Dataset, CC0; rebuilt by
`bench/build_melting_points.py`), from the same "fast" RDKit descriptors every compound
already stores. The ensemble then sees two more columns:

    prior:melting_point_K   the booster's melting point (hold-out RMSE ≈ 38 K)
    prior:GSE_logS          the GSE with that melting point and Crippen log P (`MolLogP`)

No compound is re-parsed to score a pool: the booster reads the stored descriptor block of
X. On the solubility benchmark the columns lower the default ensemble's RMSE by 0.010 in
5-fold CV on the 1,024 training compounds (five fold seeds, each one better), by 0.004 on
the test split, and by 0.013–0.026 when only 150–550 of them are labelled
(`bench/melting_point_prior.py`, BENCHMARKS.md).

The booster is trained once per machine from the shipped data (≈ 25 s, most of it
descriptors for 10k molecules) and cached on disk; every model trained with the prior keeps
its own copy in its artifact, so a model scores the same whatever the cache holds later.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rdkit
import xgboost as xgb

from .features import (
    HIT_FINDING_SPEC,
    SPECS,
    FeatureSpec,
    compute_stored_features,
    descriptor_names,
    mols_from_smiles,
)

DATA_PATH = Path(__file__).with_name("data") / "melting_points.csv.gz"
PRIOR_NAMES: tuple[str, str] = ("prior:melting_point_K", "prior:GSE_logS")
DESCRIPTORS = "fast"  # the stored descriptor block the booster reads
N_DESCRIPTORS = len(descriptor_names(DESCRIPTORS))
_LOGP = descriptor_names(DESCRIPTORS).index("MolLogP")
ROOM_TEMPERATURE_K = 298.15

# Chosen on the solubility training split (CV of the ensemble fed by the booster): 150
# rounds at depth 6 score as well as 300 or 400 deeper ones, at 0.10 CPU-s per 50k rows.
BOOSTER_PARAMS: dict[str, object] = {
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.5,
    "min_child_weight": 2,
    "max_bin": 64,
    "seed": 0,
    # One thread while training: the same booster on every machine.
    "nthread": 1,
    "verbosity": 0,
}
N_ROUNDS = 150


def gse_log_s(melting_point_k: np.ndarray, log_p: np.ndarray) -> np.ndarray:
    """Yalkowsky's general solubility equation (log mol/L); Tm below 25 °C adds nothing."""
    return 0.5 - 0.01 * np.maximum(melting_point_k - ROOM_TEMPERATURE_K, 0.0) - log_p


class MeltingPointPrior:
    """The booster plus how its two columns are made from X's descriptor block."""

    def __init__(self, booster: xgb.Booster) -> None:
        self.booster = booster

    def columns(self, X: np.ndarray, offset: int) -> np.ndarray:
        """(n, 2) float32: predicted melting point (K) and GSE log S for each row of X,
        whose "fast" descriptors start at column `offset`."""
        block = X[:, offset : offset + N_DESCRIPTORS]
        if block.shape[1] != N_DESCRIPTORS:
            raise ValueError(f"X has no {N_DESCRIPTORS} descriptor columns from column {offset}")
        out = np.empty((X.shape[0], 2), dtype=np.float32)
        if X.shape[0]:
            out[:, 0] = self.booster.inplace_predict(block)
            out[:, 1] = gse_log_s(out[:, 0], block[:, _LOGP])
        return out

    def augment(self, X: np.ndarray, offset: int, *, out: np.ndarray | None = None) -> np.ndarray:
        """X with the two prior columns appended: written into `out` (float32, C-contiguous,
        ≥ n rows, two more columns than X; its first n rows are returned) or a new array."""
        shape = (X.shape[0], X.shape[1] + 2)
        if (
            out is not None
            and out.dtype == np.float32
            and out.flags.c_contiguous
            and out.shape[0] >= shape[0]
            and out.shape[1] == shape[1]
        ):
            out = out[: shape[0]]
        else:
            out = np.empty(shape, dtype=np.float32)
        out[:, : X.shape[1]] = X
        out[:, X.shape[1] :] = self.columns(X, offset)
        return out


def training_data(path: Path = DATA_PATH) -> tuple[list[str], np.ndarray]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["smiles"] for r in rows], np.array([float(r["tm_k"]) for r in rows], dtype=np.float32)


def train_booster(smiles: list[str], melting_points: np.ndarray) -> xgb.Booster:
    spec = SPECS["desc_fast"]
    X = np.stack([compute_stored_features(m, spec) for m in mols_from_smiles(smiles)])
    return xgb.train(BOOSTER_PARAMS, xgb.DMatrix(X, label=melting_points), num_boost_round=N_ROUNDS)


def cache_dir() -> Path:
    env = os.environ.get("CHEMLOOP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "chemloop"


def _cache_key(path: Path) -> str:
    """Changes whenever the data, the settings or the libraries that make the booster do."""
    h = hashlib.sha256(path.read_bytes())
    h.update(json.dumps([BOOSTER_PARAMS, N_ROUNDS, rdkit.__version__, xgb.__version__], sort_keys=True).encode())
    return h.hexdigest()[:16]


@lru_cache(maxsize=2)
def load_prior(directory: Path | None = None, data_path: Path = DATA_PATH) -> MeltingPointPrior:
    """The booster from the disk cache, trained and cached first if it is not there."""
    directory = directory or cache_dir()
    target = directory / f"melting_point_prior-{_cache_key(data_path)}.ubj"
    if not target.exists():
        booster = train_booster(*training_data(data_path))
        directory.mkdir(parents=True, exist_ok=True)
        # Temp file + rename: a worker reading the cache never sees half a file, and two
        # processes training at once write the same bytes.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".ubj.tmp")
        os.close(fd)
        try:
            booster.save_model(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; workers may run as another user
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    # Always the file's booster, so a fresh and a cached prior are the same model.
    booster = xgb.Booster(model_file=str(target))
    booster.set_param({"nthread": 2})
    return MeltingPointPrior(booster)


def prior_default(spec: FeatureSpec) -> bool:
    """Whether a model with this featurizer gets the prior unless it says otherwise: every
    featurizer with the "fast" descriptors except hit finding's, whose settings were chosen
    on docking scores without it (BENCHMARKS.md, "Hit finding")."""
    return spec.descriptors == DESCRIPTORS and spec.name != HIT_FINDING_SPEC.name


def descriptor_offset(spec: FeatureSpec) -> int:
    """The first descriptor column of the spec's X: after the fingerprint blocks."""
    return (spec.n_bits if spec.morgan != "none" else 0) + spec.atom_pairs


def ensemble_kwargs(spec: FeatureSpec, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """BootstrapEnsemble keyword arguments for `params` on this spec, with the prior as a
    model trained in the product gets it (on by default where `prior_default` says)."""
    kwargs = dict(params or {})
    if kwargs.setdefault("melting_point_prior", prior_default(spec)):
        kwargs["descriptor_offset"] = descriptor_offset(spec)
    return kwargs
