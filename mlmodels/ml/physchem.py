"""The physico-chemical prior: three physics columns appended to X inside an ensemble.

Why: the solubility model's worst errors are rigid, planar or symmetric solids whose low
solubility comes from a high melting point (crystal packing), which no 2-D descriptor
encodes (BENCHMARKS.md, "Model quality"). Yalkowsky's general solubility equation (GSE),

    log S = 0.5 - 0.01 (Tm - 25 °C) - log P          (the Tm term is 0 for liquids)

says how melting point and lipophilicity combine. A compound's own melting point and log P
are rarely measured, so two XGBoost boosters learn them from measurements of *other*
compounds, from the same "fast" RDKit descriptors every compound already stores:

- melting point: 10,116 compounds of the Jean-Claude Bradley Open Melting Point Dataset
  (CC0); hold-out RMSE 36.1 K (37.8 K with the 150-round booster used until 2026-12-02);
- log P: 3,678 experimental octanol/water values (the KOWWIN data set of EPI Suite, with
  the CRC Handbook's table); the booster learns the correction to Crippen's `MolLogP`,
  hold-out RMSE 0.41 against Crippen's 0.78 (0.44 with the 150-round booster).

Both files are rebuilt by `bench/build_prior_data.py` and leave out every compound of
the solubility benchmark. The ensemble then sees three more columns:

    prior:melting_point_K   the booster's melting point
    prior:logP              Crippen log P plus the booster's correction
    prior:GSE_logS          the GSE with both

No compound is re-parsed to score a pool: the boosters read the stored descriptor block of
X. What the columns do to the solubility benchmark is measured by
`bench/melting_point_prior.py` (BENCHMARKS.md). Models trained in the eleventh session,
before the log P booster, carry a prior with the melting point only and keep appending
its two columns (the learned melting point and the GSE with Crippen log P).

The boosters are trained once per machine from the shipped data (≈ 1 min, most of it
descriptors for 14k molecules) and cached on disk; every model trained with the prior keeps
its own copy in its artifact, so a model scores the same whatever the cache holds later.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
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
LOG_P_DATA_PATH = Path(__file__).with_name("data") / "log_p.csv.gz"
GSE_NAME = "prior:GSE_logS"
PRIOR_NAMES: tuple[str, ...] = ("prior:melting_point_K", "prior:logP", GSE_NAME)
# What models trained before the log P booster (2026-12-01, eleventh session) append.
MELTING_POINT_ONLY_NAMES: tuple[str, ...] = ("prior:melting_point_K", GSE_NAME)
DESCRIPTORS = "fast"  # the stored descriptor block the booster reads
N_DESCRIPTORS = len(descriptor_names(DESCRIPTORS))
LOG_P_COLUMN = descriptor_names(DESCRIPTORS).index("MolLogP")
ROOM_TEMPERATURE_K = 298.15

# Chosen on the solubility training split (5-fold CV of the ensemble fed by the boosters,
# fold seeds 0-4; bench/prior_rounds.py): many small steps make both boosters smoother and
# better. CV RMSE 0.5084 with 150 rounds at eta 0.1 (the setting until 2026-12-02), 0.5062
# with 600 at 0.05, 0.5026 with 2400 at 0.0125, 0.5019 with 4800 at 0.00625 (within noise of
# 2400 at twice the cost). 2400 trees cost ≈ 1.5 CPU-s per 50k rows and booster, which is
# why the columns are stored per compound (Compound.prior_columns) and scoring reads them.
BOOSTER_PARAMS: dict[str, object] = {
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.0125,
    "subsample": 0.8,
    "colsample_bytree": 0.5,
    "min_child_weight": 2,
    "max_bin": 64,
    "seed": 0,
    # One thread while training: the same booster on every machine.
    "nthread": 1,
    "verbosity": 0,
}
N_ROUNDS = 2400


def gse_log_s(melting_point_k: np.ndarray, log_p: np.ndarray) -> np.ndarray:
    """Yalkowsky's general solubility equation (log mol/L); Tm below 25 °C adds nothing."""
    return 0.5 - 0.01 * np.maximum(melting_point_k - ROOM_TEMPERATURE_K, 0.0) - log_p


class PhyschemPrior:
    """The boosters plus how their columns are made from X's descriptor block.

    With a log P booster (every model trained from the twelfth session on) the columns are
    the learned melting point, the learned log P and the GSE with both. Without one (models
    trained before; their pickles have no `log_p_booster`) they are the learned melting
    point and the GSE with Crippen log P, exactly as those models were fit.
    """

    log_p_booster: xgb.Booster | None = None  # the class default old pickles fall back to

    def __init__(self, booster: xgb.Booster, log_p_booster: xgb.Booster | None = None) -> None:
        self.booster = booster
        self.log_p_booster = log_p_booster

    @property
    def names(self) -> tuple[str, ...]:
        return PRIOR_NAMES if self.log_p_booster is not None else MELTING_POINT_ONLY_NAMES

    @property
    def n_columns(self) -> int:
        return len(self.names)

    def columns(self, X: np.ndarray, offset: int) -> np.ndarray:
        """(n, n_columns) float32 for each row of X, whose "fast" descriptors start at
        column `offset`: the names' quantities in their order."""
        block = X[:, offset : offset + N_DESCRIPTORS]
        if block.shape[1] != N_DESCRIPTORS:
            raise ValueError(f"X has no {N_DESCRIPTORS} descriptor columns from column {offset}")
        out = np.empty((X.shape[0], self.n_columns), dtype=np.float32)
        if X.shape[0]:
            out[:, 0] = self.booster.inplace_predict(block)
            log_p = block[:, LOG_P_COLUMN]
            if self.log_p_booster is not None:
                # The booster learned the correction to Crippen's atom contributions.
                out[:, 1] = log_p + self.log_p_booster.inplace_predict(block)
                log_p = out[:, 1]
            out[:, -1] = gse_log_s(out[:, 0], log_p)
        return out

    @property
    def key(self) -> str:
        """Names these boosters exactly (a hash of their saved trees and the column names):
        columns stored per compound under this key are the ones `columns` would compute,
        so scoring may read them instead (mlmodels.services.model_score_compounds)."""
        key = self.__dict__.get("_key")
        if key is None:
            h = hashlib.sha256(json.dumps(self.names).encode())
            for booster in (self.booster, self.log_p_booster):
                if booster is not None:
                    h.update(bytes(booster.save_raw("ubj")))
            key = self.__dict__["_key"] = h.hexdigest()[:16]
        return key

    def __getstate__(self) -> dict[str, Any]:
        # The key is recomputed from the boosters, never trusted from a pickle.
        return {k: v for k, v in self.__dict__.items() if k != "_key"}

    def stored_columns(self, stored: np.ndarray, spec: FeatureSpec) -> np.ndarray:
        """`columns` for `spec`'s stored vectors (n, spec.n_stored), as kept per compound:
        the same values as for the X those vectors build (X puts the fingerprint bits,
        which are not stored, in front of them)."""
        return self.columns(stored, spec.descriptor_offset - (spec.n_features - spec.n_stored))

    def fill(self, X: np.ndarray, offset: int, columns: np.ndarray) -> np.ndarray:
        """`columns` (n, n_columns) as read from storage, with every row that holds a NaN
        (nothing stored, or stored under another key) computed from X instead."""
        if columns.shape != (X.shape[0], self.n_columns):
            raise ValueError(f"stored prior columns must be ({X.shape[0]}, {self.n_columns}), got {columns.shape}")
        missing = np.isnan(columns).any(axis=1)
        if missing.any():
            columns = np.array(columns, dtype=np.float32)
            columns[missing] = self.columns(X[missing], offset)
        return columns

    def augment(
        self, X: np.ndarray, offset: int, *, out: np.ndarray | None = None, stored: np.ndarray | None = None
    ) -> np.ndarray:
        """X with the prior's columns appended: written into `out` (float32, C-contiguous,
        ≥ n rows, n_columns more columns than X; its first n rows are returned) or a new array.
        `stored`: the columns as stored per compound (NaN rows computed, see `fill`)."""
        shape = (X.shape[0], X.shape[1] + self.n_columns)
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
        out[:, X.shape[1] :] = self.columns(X, offset) if stored is None else self.fill(X, offset, stored)
        return out


# Artifacts pickled before the rename name the class this way.
MeltingPointPrior = PhyschemPrior


def training_data(path: Path = DATA_PATH, column: str = "tm_k") -> tuple[list[str], np.ndarray]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["smiles"] for r in rows], np.array([float(r[column]) for r in rows], dtype=np.float32)


def log_p_training_data(path: Path = LOG_P_DATA_PATH) -> tuple[list[str], np.ndarray]:
    return training_data(path, "log_p")


def descriptor_block(smiles: list[str]) -> np.ndarray:
    """The "fast" descriptors of each SMILES, as the stored features hold them."""
    spec = SPECS["desc_fast"]
    return np.stack([compute_stored_features(m, spec) for m in mols_from_smiles(smiles)])


def fit_booster(X: np.ndarray, target: np.ndarray, *, rounds: int = N_ROUNDS, eta: float | None = None) -> xgb.Booster:
    """One of the prior's boosters on descriptor blocks X; `rounds` and `eta` other than the
    defaults are for benchmarks (bench/prior_rounds.py)."""
    params = BOOSTER_PARAMS if eta is None else {**BOOSTER_PARAMS, "eta": eta}
    return xgb.train(params, xgb.DMatrix(X, label=target), num_boost_round=rounds)


def train_booster(smiles: list[str], melting_points: np.ndarray) -> xgb.Booster:
    return fit_booster(descriptor_block(smiles), melting_points)


def train_log_p_booster(smiles: list[str], log_p: np.ndarray) -> xgb.Booster:
    """Learns measured log P minus Crippen's: on 600 held-out compounds of the shipped data
    that leaves 0.41 log units of error where Crippen alone has 0.78 (and 0.43 for a
    booster on log P itself)."""
    X = descriptor_block(smiles)
    return fit_booster(X, log_p - X[:, LOG_P_COLUMN])


def cache_dir() -> Path:
    env = os.environ.get("CHEMLOOP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "chemloop"


def _cache_key(path: Path) -> str:
    """Changes whenever the data, the settings or the libraries that make the booster do."""
    h = hashlib.sha256(path.read_bytes())
    h.update(json.dumps([BOOSTER_PARAMS, N_ROUNDS, rdkit.__version__, xgb.__version__], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _cached_booster(
    directory: Path, stem: str, data_path: Path, train: Callable[[Path], xgb.Booster]
) -> xgb.Booster:
    """The booster from `directory`, trained from `data_path` and saved there first if missing."""
    target = directory / f"{stem}-{_cache_key(data_path)}.ubj"
    if not target.exists():
        booster = train(data_path)
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
    return booster


@lru_cache(maxsize=2)
def load_prior(
    directory: Path | None = None, data_path: Path = DATA_PATH, log_p_data_path: Path = LOG_P_DATA_PATH
) -> PhyschemPrior:
    """The prior from the disk cache, its boosters trained and cached first if not there."""
    directory = directory or cache_dir()
    return PhyschemPrior(
        _cached_booster(directory, "melting_point_prior", data_path, lambda p: train_booster(*training_data(p))),
        _cached_booster(
            directory, "log_p_prior", log_p_data_path, lambda p: train_log_p_booster(*log_p_training_data(p))
        ),
    )


def load_prior_if_cached(directory: Path | None = None) -> PhyschemPrior | None:
    """The machine's prior if its boosters are in the disk cache, else None: for callers
    that must never spend the ≈ 1 min of training them (a web request storing features)."""
    directory = directory or cache_dir()
    for stem, data_path in (("melting_point_prior", DATA_PATH), ("log_p_prior", LOG_P_DATA_PATH)):
        if not (directory / f"{stem}-{_cache_key(data_path)}.ubj").exists():
            return None
    return load_prior(directory)


def prior_default(spec: FeatureSpec) -> bool:
    """Whether a model with this featurizer gets the prior unless it says otherwise: every
    featurizer with the "fast" descriptors except hit finding's, whose settings were chosen
    on docking scores without it (BENCHMARKS.md, "Hit finding")."""
    return spec.descriptors == DESCRIPTORS and spec.name != HIT_FINDING_SPEC.name


def ensemble_kwargs(spec: FeatureSpec, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """BootstrapEnsemble keyword arguments for `params` on this spec, with the prior as a
    model trained in the product gets it (on by default where `prior_default` says)."""
    kwargs = dict(params or {})
    if kwargs.setdefault("melting_point_prior", prior_default(spec)):
        kwargs["descriptor_offset"] = spec.descriptor_offset
    return kwargs
