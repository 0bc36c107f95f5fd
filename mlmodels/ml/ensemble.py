"""Bootstrap ensembles: N members, each fit on a resample; the spread is the uncertainty.

scikit-learn conventions: `__init__` only stores parameters, `fit` returns self,
learned attributes end in `_`, randomness comes from `random_state`.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .features import FeatureSpec, build_matrix
from .physchem import GSE_NAME, PhyschemPrior, load_prior
from .smooth import KernelBasis, MinMaxBasis, fit_kernel_ridge, nystrom_whitener
from .stacked import compile_trees, stack_boosters

Algorithm = Literal["xgboost", "rf", "mlp"]
Task = Literal["regression", "classification"]
ALGORITHMS: tuple[str, ...] = ("xgboost", "rf", "mlp")
ClipSide = Literal["high", "low"]
_SMOOTH_BLOCK = 16_384  # rows per kernel block in smooth_members (a 64 MB float64 kernel)
# From this many rows the members' trees predict as one stacked booster (stacked.py):
# building it costs 0.2-0.6 s once per loaded ensemble, a page's few rows do not need it.
STACK_MIN_ROWS = 2048
# Stacked boosters and compiled trees of loaded ensembles, kept beside them rather than
# on them so an artifact never pickles a second copy of the trees.
_stacked: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_compiled: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
# One reusable X-with-prior buffer per thread for pool-sized blocks: a fresh ~144 MB
# array per 50k-row chunk costs ~0.13 CPU-s of page faults (the same reason
# features.build_matrix takes `out`). Per thread, so concurrent predictions never share one.
_prior_buffers = threading.local()
CLIP_SIDES: tuple[str, ...] = ("high", "low")
TASKS: tuple[str, ...] = ("regression", "classification")


@dataclass(frozen=True, slots=True)
class RegressionPrediction:
    mean: np.ndarray  # (n,)
    std: np.ndarray  # (n,) spread of the member predictions
    members: np.ndarray | None  # (n_members, n) or None when not requested


@dataclass(frozen=True, slots=True)
class ClassificationPrediction:
    proba: np.ndarray  # (n, K) mean member probabilities, rows sum to 1
    labels: np.ndarray  # (n,) argmax class
    std: np.ndarray  # (n, K) member spread per class
    disagreement: np.ndarray  # (n,) mean over classes of `std`: one number for ranking
    member_proba: np.ndarray | None  # (n_members, n, K) or None when not requested


Prediction = RegressionPrediction | ClassificationPrediction


@dataclass(frozen=True, slots=True)
class Calibration:
    """Predictive variance = scale x spread² + noise, fit on out-of-bag errors.

    A bootstrap ensemble's spread measures how much the members disagree, not how far
    the mean is from a measurement: on the solubility test split ±1.96 x spread held
    53-56 % of the values. Following "calibration after bootstrap" (Palmer et al., npj
    Comput. Mater. 8, 115, 2022), the spread is rescaled on the training rows' out-of-bag
    errors; the added `noise` term is the error no member disagreement shows (assay noise,
    what the features cannot tell apart). Both are fit by Gaussian maximum likelihood.
    A row's out-of-bag mean averages only its m out-of-bag members, so its error carries
    spread² x (1/m - 1/N) more variance than the full ensemble's; the fit accounts for it.
    The spread is the population std over the N members, as `RegressionPrediction.std`.
    An out-of-bag spread comes from ~4 members and is noisy, so the fit leans toward the
    noise term: the intervals hold on average (solubility test split: 0.93 at 95 %, with
    150 to 1,024 training compounds) and are a little too even (BENCHMARKS.md, 2026-12-02).
    """

    scale: float
    noise: float
    n_rows: int

    @classmethod
    def fit(cls, member_pred: np.ndarray, oob: np.ndarray, y: np.ndarray) -> Calibration | None:
        """member_pred, oob: (members, n) predictions of the training rows and out-of-bag
        masks; y: (n,) the targets they predict. None when fewer than 10 rows have two or
        more out-of-bag members."""
        from scipy.optimize import minimize

        n_members = member_pred.shape[0]
        m = oob.sum(axis=0)
        usable = m >= 2
        if usable.sum() < 10:
            return None
        pred = np.where(oob[:, usable], member_pred[:, usable], np.nan)
        mean = np.nanmean(pred, axis=0)
        # Unbiased member variance from the m out-of-bag members; the product's spread is
        # the population std over N, whose square is (N - 1) / N of it on average.
        var = np.nanvar(pred, axis=0, ddof=1)
        r2 = (y[usable] - mean) ** 2
        extra = var * (1.0 / m[usable] - 1.0 / n_members)
        spread2 = var * (n_members - 1) / n_members  # the spread² the product will pass in

        # A floor on the variance: targets the members fit exactly (a constant assay) would
        # otherwise drive the noise to 0 and the likelihood to infinity.
        floor = 1e-12 + 1e-9 * float(np.var(y))

        def nll(log_params: np.ndarray) -> float:
            scale, noise = np.exp(np.clip(log_params, -50.0, 50.0))
            v = np.maximum(scale * spread2 + noise + extra, floor)
            return float(np.sum(np.log(v) + r2 / v))

        start = np.log([0.5, max(float(np.mean(r2)) / 2, 1e-6)])
        # An explicit simplex one e-fold wide: Nelder-Mead's default steps are 5 % of each
        # start value, far too small for log-parameters.
        simplex = start + np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        result = minimize(
            nll, start, method="Nelder-Mead", options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-6}
        )
        if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
            return None
        scale, noise = (float(v) for v in np.exp(np.clip(result.x, -50.0, 50.0)))
        return cls(scale=scale, noise=max(noise, floor), n_rows=int(usable.sum()))

    def apply(self, std: np.ndarray | float) -> np.ndarray:
        """Spread(s) → predictive std(s), in the spread's dtype (a 0-d array for a number)."""
        std = np.asarray(std)
        return np.sqrt(self.scale * np.square(std, dtype=np.float64) + self.noise).astype(std.dtype, copy=False)

    def to_dict(self) -> dict[str, float | int]:
        """As kept in a model version's metrics (`uncertainty_calibration`)."""
        return {"scale": round(self.scale, 6), "noise": round(self.noise, 6), "rows": self.n_rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(scale=float(data["scale"]), noise=float(data["noise"]), n_rows=int(data.get("rows", 0)))


class _ConstantClassifier:
    """A member whose bootstrap saw one class only: it predicts that class."""

    def __init__(self, label: int) -> None:
        self.label = label


class BootstrapEnsemble(BaseEstimator):
    """Bootstrap ensemble of XGBoost (default), random-forest or MLP members.

    Classification labels are integers 0..K-1 (K = `n_classes` or max(y)+1).
    Bootstraps are stratified by class, so every class present in y reaches every
    member; a member that still lacks classes (e.g. `n_classes` larger than what y
    contains) outputs 0 probability for them, so every member always has K columns.

    The XGBoost defaults (200 trees of depth 4, eta 0.12, 70 % row / 30 % column
    subsampling, min_child_weight 2, 64 histogram bins) were chosen by 5-fold CV on
    the solubility training split (see BENCHMARKS.md); deeper trees or more rounds
    scored no better in CV and cost fit and 1M-pool scoring time (200 trees at eta
    0.12 scored as 400 at 0.06, and pay for the smooth part below at predict time).

    Regression with XGBoost members also has a smooth part (`smooth_weight` > 0, see
    mlmodels.ml.smooth): each member predicts
    `(1 - smooth_weight) * trees + smooth_weight * kernel ridge`, both halves fit on
    the member's bootstrap, the kernel ridge on the quantile-normalised non-binary
    columns (descriptors) with `smooth_landmarks` Nyström landmarks shared by all
    members. Mean and spread still come from the members. 5-fold CV RMSE on the
    solubility training split: 0.534 with the smooth part vs 0.570 trees only
    (smooth_weight 0.6: 0.533, within noise; 0.5 keeps half on the SHAP-mappable
    trees); gamma (a multiple of sklearn's "scale"), alpha and the 512 landmarks
    were chosen there too (256 landmarks: 0.55). The kernel half's ensemble mean is
    (`smooth_all_rows`, default all of it) one more fit on all training rows: every
    member's kernel half is shifted by the same function, so the spread stays the
    bootstraps' and scoring costs nothing more (see `_fit_part`). It is off for
    classification, rf/mlp members and when X has no non-binary column (fingerprint
    bits only). With a clipped target (hit finding) both halves fit the clipped
    values; the kernel half may then predict slightly beyond the clip level.

    `melting_point_prior=True` appends three columns to X before any member sees it: a
    melting point learned from 10k other compounds, a log P learned from 3.7k, and the
    general solubility equation with both (mlmodels.ml.physchem). X must hold the "fast"
    RDKit descriptors from column `descriptor_offset` on. Callers still pass the plain X;
    `n_features_in_` counts it without those columns, and the prior's boosters travel with
    the fitted ensemble (models fit before the log P booster keep their two columns).
    In regression two more settings use it: `smooth_prior_weight` scales the prior's
    columns in the kernel half's distance (4: each counts as 16 of the ~160 descriptor
    columns there), and `prior_baseline` is the share of a line in the GSE column that
    the members learn around (see `_fit_baseline`). Both chosen by 5-fold CV on the
    solubility training split (BENCHMARKS.md, 2026-12-01).
    """

    def __init__(
        self,
        *,
        n_members: int = 10,
        algorithm: Algorithm = "xgboost",
        task: Task = "regression",
        n_classes: int | None = None,
        n_estimators: int = 200,
        learning_rate: float = 0.12,
        max_depth: int = 4,
        subsample: float = 0.7,
        colsample_bytree: float = 0.3,
        min_child_weight: float = 2.0,
        reg_lambda: float = 1.0,
        max_bin: int = 64,
        rf_n_estimators: int = 100,
        hidden_layer_sizes: tuple[int, ...] = (256, 64),
        extra_params: dict[str, Any] | None = None,
        target_clip_quantile: float | None = None,
        target_clip_side: ClipSide = "high",
        smooth_weight: float = 0.5,
        smooth_landmarks: int = 512,
        smooth_gamma: float = 0.2,
        smooth_alpha: float = 0.01,
        smooth_prior_weight: float = 4.0,
        smooth_all_rows: float = 1.0,
        count_weight: float = 0.0,
        count_columns: int = 0,
        count_alpha: float = 0.3,
        count_landmarks: int = 512,
        melting_point_prior: bool = False,
        prior_baseline: float = 0.5,
        descriptor_offset: int = 0,
        n_jobs: int = 2,
        chunk_size: int = 50_000,
        random_state: int | None = 0,
    ) -> None:
        self.n_members = n_members
        self.algorithm = algorithm
        self.task = task
        self.n_classes = n_classes
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.rf_n_estimators = rf_n_estimators
        self.hidden_layer_sizes = hidden_layer_sizes
        self.extra_params = extra_params
        self.target_clip_quantile = target_clip_quantile
        self.target_clip_side = target_clip_side
        self.smooth_weight = smooth_weight
        self.smooth_landmarks = smooth_landmarks
        self.smooth_gamma = smooth_gamma
        self.smooth_alpha = smooth_alpha
        self.smooth_prior_weight = smooth_prior_weight
        self.smooth_all_rows = smooth_all_rows
        self.count_weight = count_weight
        self.count_columns = count_columns
        self.count_alpha = count_alpha
        self.count_landmarks = count_landmarks
        self.melting_point_prior = melting_point_prior
        self.prior_baseline = prior_baseline
        self.descriptor_offset = descriptor_offset
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size
        self.random_state = random_state

    # --- fitting ---------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> BootstrapEnsemble:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.n_members < 1:
            raise ValueError("n_members must be >= 1")
        X = _as_float32(X)
        y = np.asarray(y)
        if X.shape[0] != y.shape[0] or X.shape[0] < 2:
            raise ValueError("X and y need the same number (>= 2) of rows")
        if self.task == "classification":
            y = y.astype(np.int64)
            if y.min() < 0:
                raise ValueError("class labels must be integers 0..K-1")
            self.n_classes_ = int(self.n_classes or (y.max() + 1))
            if y.max() >= self.n_classes_:
                raise ValueError(f"label {y.max()} >= n_classes {self.n_classes_}")
        else:
            y = y.astype(np.float32)
            if not np.all(np.isfinite(y)):
                raise ValueError("regression targets must be finite")
            y = self._clip_target(y)
        self.n_features_in_ = X.shape[1]
        self.prior_: PhyschemPrior | None = load_prior() if self.melting_point_prior else None
        X = self.member_input(X)
        self.baseline_ = self._fit_baseline(X, y)
        if self.baseline_ is not None:
            y = y - self._baseline(X)

        rng = np.random.default_rng(self.random_state)
        # One independent seed per member, drawn up front, so threads cannot reorder them.
        seeds = rng.integers(0, 2**31 - 1, size=self.n_members)
        samples = [self._bootstrap(y, np.random.default_rng(int(seed))) for seed in seeds]
        self._fit_basis(X, int(rng.integers(0, 2**31 - 1)))
        if self.task == "classification":
            self.member_classes_ = [np.unique(y[idx]) for idx in samples]
        else:
            self.member_classes_ = []

        def fit_one(i: int) -> Any:
            idx = samples[i]
            return self._fit_member(X[idx], y[idx], int(seeds[i]))

        # XGBoost and sklearn trees release the GIL, so threads give real parallelism
        # without copying X into worker processes; results are in member order and
        # each member depends only on its own seed, so n_jobs never changes the model.
        workers = max(1, min(self.n_jobs, self.n_members)) if self.algorithm != "rf" else 1
        if workers == 1:
            self.members_ = [fit_one(i) for i in range(self.n_members)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                self.members_ = list(pool.map(fit_one, range(self.n_members)))
        smooth_own = self._fit_smooth(X, y, samples)
        self.oob_masks_ = []
        for idx in samples:
            oob = np.ones(X.shape[0], dtype=bool)
            oob[idx] = False
            self.oob_masks_.append(oob)
        self.calibration_ = None
        if self.task == "regression" and self.target_clip_quantile is None:
            self.calibration_ = self._fit_calibration(X, y, smooth_own)
        return self

    def member_input(self, X: np.ndarray, *, reuse: bool = False, prior_columns: np.ndarray | None = None) -> np.ndarray:
        """X as the members see it: with the physico-chemical prior's columns appended
        when it is on (mlmodels.ml.physchem), else X itself. `reuse`: write pool-sized
        blocks into this thread's buffer (only for a result used before the next call).
        `prior_columns`: the prior's columns as stored per compound under `prior_key`
        (rows of NaN are computed); ignored by an ensemble without the prior."""
        prior = getattr(self, "prior_", None)  # artifacts from before the prior have none
        if prior is None:
            return X
        if not reuse or X.shape[0] < STACK_MIN_ROWS:
            return prior.augment(X, self.descriptor_offset, stored=prior_columns)
        buf = getattr(_prior_buffers, "array", None)
        width = X.shape[1] + prior.n_columns
        if buf is None or buf.shape[0] < X.shape[0] or buf.shape[1] != width:
            buf = _prior_buffers.array = np.empty((X.shape[0], width), dtype=np.float32)
        return prior.augment(X, self.descriptor_offset, out=buf, stored=prior_columns)

    @property
    def prior_key(self) -> str | None:
        """The key of the prior's boosters (`PhyschemPrior.key`), None without the prior:
        stored columns are valid for this ensemble only under this key."""
        prior = getattr(self, "prior_", None)
        return prior.key if prior is not None else None

    @property
    def member_feature_names_extra(self) -> tuple[str, ...]:
        """Names of the columns the ensemble appends to X before its members see it."""
        prior = getattr(self, "prior_", None)
        return prior.names if prior is not None else ()

    def _fit_basis(self, X: np.ndarray, seed: int) -> None:
        """The shared kernel bases of the smooth part (None where a part is off)."""
        self.basis_: KernelBasis | None = None
        self.count_basis_: MinMaxBasis | None = None
        w, c = self.smooth_weight, self.count_weight
        if not 0.0 <= self.smooth_all_rows <= 1.0:
            raise ValueError(f"smooth_all_rows must be in [0, 1], got {self.smooth_all_rows!r}")
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"smooth_weight must be in [0, 1], got {w!r}")
        if not 0.0 <= c <= 1.0 or w + c > 1.0:
            raise ValueError(f"count_weight must be in [0, 1 - smooth_weight], got {c!r}")
        if self.task != "regression" or self.algorithm != "xgboost":
            return
        if w > 0.0:
            columns = KernelBasis.usable_columns(X)
            if columns.size:
                self.basis_ = KernelBasis(n_landmarks=self.smooth_landmarks, gamma=self.smooth_gamma).fit(
                    X, columns, seed, weights=self._basis_weights(columns)
                )
        if c > 0.0:
            if not self.count_columns:
                raise ValueError("count_weight > 0 needs count_columns: how many leading columns of X are counts")
            self.count_basis_ = MinMaxBasis(n_landmarks=self.count_landmarks).fit(X, self.count_columns, seed + 1)

    def _fit_baseline(self, X: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
        """Regression with the prior: `prior_baseline` x the least-squares line of y on the
        prior's GSE column, its input clipped to the training range (see _baseline).

        The members then learn y minus it. Trees and an RBF kernel are flat beyond their
        data, so a near-linear physical relation (logS ~ GSE) is what they capture worst,
        most of all with few labels. Half the line, not all of it: 5-fold CV on the
        solubility training split 0.512 with half, 0.515 with all of it, 0.516 without
        (BENCHMARKS.md, 2026-12-01); the clip keeps a compound whose prior is far outside
        the training range (an aminoglycoside with a predicted log P of -7.7) from being
        extrapolated along the line. A GSE that is not finite (a descriptor RDKit could not
        compute) takes the training median.
        """
        w = float(self.prior_baseline)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"prior_baseline must be in [0, 1], got {w!r}")
        prior = getattr(self, "prior_", None)
        if w == 0.0 or self.task != "regression" or prior is None or GSE_NAME not in prior.names:
            return None
        column = self.n_features_in_ + prior.names.index(GSE_NAME)
        g = X[:, column].astype(np.float64)
        finite = np.isfinite(g)
        if finite.sum() < 2 or np.ptp(g[finite]) == 0.0:  # no line to fit
            return None
        g, target = g[finite], np.asarray(y, dtype=np.float64)[finite]
        slope, intercept = np.polyfit(g, target, 1)
        baseline = {
            "column": column,
            "slope": w * float(slope),
            "intercept": w * float(intercept),
            "lo": float(g.min()),
            "hi": float(g.max()),
            "fill": float(np.median(g)),
        }
        baseline["mean"] = float(self._baseline(X, baseline).mean())
        return baseline

    def _baseline(self, X: np.ndarray, baseline: dict[str, float] | None = None) -> np.ndarray:
        """The fitted baseline for X with the prior's columns (float32, (n,))."""
        b = baseline or self.baseline_
        g = X[:, int(b["column"])]
        g = np.clip(np.where(np.isfinite(g), g, np.float32(b["fill"])), np.float32(b["lo"]), np.float32(b["hi"]))
        return np.float32(b["slope"]) * g + np.float32(b["intercept"])

    def baseline_terms(self, X: np.ndarray) -> tuple[int, np.ndarray, float] | None:
        """For X with the prior's columns: (GSE column, the baseline's value per row, its
        training mean), or None without a baseline. explain.py books it on that column."""
        b = getattr(self, "baseline_", None)  # artifacts from before the baseline have none
        if b is None:
            return None
        return int(b["column"]), self._baseline(X), float(b["mean"])

    def _basis_weights(self, columns: np.ndarray) -> np.ndarray | None:
        """Kernel weights of the basis columns: `smooth_prior_weight` on the prior's
        columns (appended after the caller's n_features_in_), 1 elsewhere."""
        w = float(getattr(self, "smooth_prior_weight", 1.0))
        if w <= 0.0:
            raise ValueError(f"smooth_prior_weight must be > 0, got {w!r}")
        if w == 1.0 or getattr(self, "prior_", None) is None:
            return None
        return np.where(columns >= self.n_features_in_, w, 1.0)

    def kernel_column_weights(self, n_columns: int) -> np.ndarray | None:
        """Per column of `member_input`'s output (n_columns wide), its weight in the kernel
        half's distance; None where every column counts once, and where there is no kernel
        half (classification, random forest, smooth_weight 0): the trees weigh no column
        more than another. A design strategy that measures distances as the model does reads
        these (cycles.strategies)."""
        if getattr(self, "basis_", None) is None:
            return None
        return self._basis_weights(np.arange(n_columns))

    def _smooth_parts(self) -> list[tuple[float, Any, np.ndarray, np.ndarray]]:
        """(weight, basis, coef (members, landmarks), intercept (members,)) per fitted part."""
        parts = []
        if getattr(self, "basis_", None) is not None:
            parts.append((float(self.smooth_weight), self.basis_, self.smooth_coef_, self.smooth_intercept_))
        if getattr(self, "count_basis_", None) is not None:
            parts.append((float(self.count_weight), self.count_basis_, self.count_coef_, self.count_intercept_))
        return parts

    def _fit_smooth(self, X: np.ndarray, y: np.ndarray, samples: list[np.ndarray]) -> np.ndarray | None:
        """Per member and part: kernel ridge weights on the member's own bootstrap rows.
        Returns the smooth half's own-bootstrap predictions of the training rows (members, n),
        or None when it is off."""
        self.smooth_coef_ = self.smooth_intercept_ = None
        self.count_coef_ = self.count_intercept_ = None
        expected = []  # (weight, mean prediction of the part over the training rows)
        own = []  # (weight, members' own-bootstrap predictions of the training rows)
        if self.basis_ is not None:
            self.smooth_coef_, self.smooth_intercept_, mean, pred = self._fit_part(
                self.basis_, self.smooth_alpha, X, y, samples
            )
            expected.append((self.smooth_weight, mean))
            own.append((self.smooth_weight, pred))
        if self.count_basis_ is not None:
            self.count_coef_, self.count_intercept_, mean, pred = self._fit_part(
                self.count_basis_, self.count_alpha, X, y, samples
            )
            expected.append((self.count_weight, mean))
            own.append((self.count_weight, pred))
        # explain.py's base value for the smooth part: the parts' training means, weighted.
        total = sum(w for w, _ in expected)
        self.smooth_expected_ = float(sum(w * m for w, m in expected) / total) if expected else 0.0
        return sum(w * p for w, p in own) / total if own else None

    def _fit_part(
        self, basis: Any, alpha: float, X: np.ndarray, y: np.ndarray, samples: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """One kernel part: coef (members, landmarks) float64, intercept (members,), its
        mean prediction over the training rows, and each member's prediction of every
        training row from its own bootstrap alone (members, n), before the shift to the
        all-rows fit: what the out-of-bag calibration of the spread needs."""
        K = basis.kernel(X)
        whitener = nystrom_whitener(basis.gram())
        P = K @ whitener

        def fit_one(idx: np.ndarray) -> tuple[np.ndarray, float]:
            return fit_kernel_ridge(P[idx], y[idx], whitener, alpha)

        # numpy's BLAS releases the GIL: members side by side, as for the trees.
        workers = max(1, min(self.n_jobs, len(samples)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            fitted = list(pool.map(fit_one, samples))
        coef = np.stack([c for c, _ in fitted])
        intercept = np.array([b for _, b in fitted], dtype=np.float64)
        own = coef @ K.T + intercept[:, None]
        share = float(self.smooth_all_rows)
        if share > 0.0:
            # A bootstrap leaves out ~37 % of the rows, which costs a kernel ridge more than
            # the trees. Move the members' mean `share` of the way to a fit on all rows, by
            # the same shift for every member: their spread (the uncertainty) is unchanged and
            # a prediction is still one (n, m) @ (m,) product per member. Solubility, share 1
            # against 0: 5-fold CV -0.0036 (share 0.5: -0.0025), test split with 375 / 550 /
            # 1,024 training compounds -0.004 / -0.001 / -0.003 (BENCHMARKS.md, 2026-12-02).
            full_coef, full_intercept = fit_kernel_ridge(P, y, whitener, alpha)
            coef += share * (full_coef - coef.mean(axis=0))
            intercept += share * (full_intercept - intercept.mean())
        return coef, intercept, float((K @ coef.mean(axis=0)).mean() + intercept.mean()), own

    @property
    def smooth_share(self) -> float:
        """Weight of the smooth part in a member's prediction (0 when it is off)."""
        return float(sum(w for w, _, _, _ in self._smooth_parts()))

    def _fit_calibration(self, X: np.ndarray, y: np.ndarray, smooth_own: np.ndarray | None) -> Calibration | None:
        """The predictive spread from the members' out-of-bag errors (see `Calibration`).

        Each training row is out of ~37 % of the bootstraps; those members' predictions of
        it are honest. The kernel half enters with each member's own-bootstrap fit, not the
        shared shift to the all-rows fit (which saw every row), and y is already the target
        around the baseline, so the baseline cancels."""
        n_members = len(self.members_)
        if n_members < 3:
            return None
        trees = np.stack([self._member_regress(m, X) for m in self.members_]).astype(np.float64)
        if smooth_own is not None:
            w = self.smooth_share
            own = (1.0 - w) * trees + w * smooth_own
        else:
            own = trees
        return Calibration.fit(own, np.asarray(self.oob_masks_), np.asarray(y, dtype=np.float64))

    def predictive_std(self, std: np.ndarray) -> np.ndarray:
        """Spread → standard deviation of the error to expect (`Calibration`); the spread
        itself for ensembles without a calibration (classification, clipped targets,
        artifacts from before it)."""
        calibration = getattr(self, "calibration_", None)
        return std if calibration is None else calibration.apply(std)

    def smooth_members(self, X: np.ndarray) -> np.ndarray | None:
        """(members, n) smooth-part predictions for X (the parts averaged by their
        weights), or None when the smooth part is off."""
        if not self._smooth_parts():
            return None
        return self._smooth_members(self.member_input(_as_float32(X)))

    def _smooth_members(self, X: np.ndarray) -> np.ndarray | None:
        """smooth_members for X that already has the prior's columns."""
        parts = self._smooth_parts()
        if not parts:
            return None
        total = sum(w for w, _, _, _ in parts)
        out = np.zeros((parts[0][2].shape[0], X.shape[0]), dtype=np.float32)
        # float64 throughout (see KernelBasis.kernel), in blocks so the float64
        # kernel stays ~64 MB whatever the chunk size (4,096-row blocks were 0.2 s slower per 50k).
        for start in range(0, X.shape[0], _SMOOTH_BLOCK):
            block = X[start : start + _SMOOTH_BLOCK]
            acc = np.zeros((out.shape[0], block.shape[0]))
            for w, basis, coef, intercept in parts:
                acc += (w / total) * (coef @ basis.kernel(block).T + intercept[:, None])
            out[:, start : start + _SMOOTH_BLOCK] = acc
        return out

    def _clip_target(self, y: np.ndarray) -> np.ndarray:
        """Hit finding: flatten the uninteresting tail so every split is spent on the good end.

        Targets beyond the `target_clip_quantile` quantile of the training labels, on
        `target_clip_side` ("high": low values are hits, e.g. docking scores), are set
        to that quantile. Predictions then rank the good end well but are compressed
        (not calibrated) beyond the clip level. `target_clip_` keeps the level used.
        """
        q = self.target_clip_quantile
        self.target_clip_ = None
        if q is None:
            return y
        if not 0.0 < q < 1.0:
            raise ValueError(f"target_clip_quantile must be in (0, 1), got {q!r}")
        if self.target_clip_side not in CLIP_SIDES:
            raise ValueError(f"target_clip_side must be one of {CLIP_SIDES}, got {self.target_clip_side!r}")
        level = float(np.quantile(y, q))
        self.target_clip_ = level
        return np.minimum(y, level) if self.target_clip_side == "high" else np.maximum(y, level)

    def _bootstrap(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = y.shape[0]
        if self.task == "regression":
            return rng.integers(0, n, size=n)
        # Stratified: each class keeps its count, so no present class goes missing.
        parts = []
        for label in np.unique(y):
            where = np.flatnonzero(y == label)
            parts.append(where[rng.integers(0, where.size, size=where.size)])
        return np.sort(np.concatenate(parts))

    def _fit_member(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        if self.task == "classification":
            present = np.unique(y)
            if present.size == 1:
                return _ConstantClassifier(int(present[0]))
            # Members are fit on labels re-indexed to the classes they saw, then
            # expanded back to K columns at predict time.
            y = np.searchsorted(present, y)
            k = present.size
        else:
            k = 0
        if self.algorithm == "xgboost":
            return self._fit_xgb(X, y, seed, k)
        if self.algorithm == "rf":
            cls = RandomForestClassifier if self.task == "classification" else RandomForestRegressor
            params: dict[str, Any] = {
                # Fewer trees than boosting: the 10 members already give 10x this many.
                "n_estimators": self.rf_n_estimators,
                # sqrt of 2,000+ fingerprint columns keeps a fully grown tree cheap;
                # on a few hundred descriptors a third of them splits better.
                "max_features": 0.33 if self.task == "regression" and X.shape[1] <= 500 else "sqrt",
                "min_samples_leaf": 1,
                "n_jobs": self.n_jobs,
                "random_state": seed,
                # The member already is a bootstrap; a second resample would only shrink it.
                "bootstrap": False,
                **(self.extra_params or {}),
            }
            return cls(**params).fit(X, y)
        mlp_cls = MLPClassifier if self.task == "classification" else MLPRegressor
        mlp = mlp_cls(
            hidden_layer_sizes=self.hidden_layer_sizes,
            alpha=1e-3,
            learning_rate_init=1e-3,
            max_iter=300,
            early_stopping=True,
            random_state=seed,
            **(self.extra_params or {}),
        )
        # Descriptors span many orders of magnitude and may be NaN; the MLP needs both fixed.
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("mlp", mlp),
            ]
        ).fit(X, y)

    def _fit_xgb(self, X: np.ndarray, y: np.ndarray, seed: int, k: int) -> xgb.Booster:
        params: dict[str, Any] = {
            "tree_method": "hist",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            # Members are fit in parallel threads (see fit), one core each: on a few
            # hundred to a few thousand rows XGBoost's own threading mostly waits.
            "nthread": 1,
            "seed": seed,
            "verbosity": 0,
        }
        if self.task == "regression":
            params["objective"] = "reg:squarederror"
        elif k == 2:
            params["objective"] = "binary:logistic"
        else:
            params.update(objective="multi:softprob", num_class=k)
        params.update(self.extra_params or {})
        dtrain = xgb.QuantileDMatrix(X, label=y, max_bin=self.max_bin, nthread=1)
        return xgb.train(params, dtrain, num_boost_round=self.n_estimators)

    # --- prediction ------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise RuntimeError("BootstrapEnsemble is not fitted; call fit(X, y) first")

    def predict_members(self, X: np.ndarray, *, prior_columns: np.ndarray | None = None) -> np.ndarray:
        """Raw member outputs for one block: (members, n) regression or (members, n, K) proba.
        `prior_columns`: see `member_input`."""
        self._check_fitted()
        X = _as_float32(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the ensemble was fit on {self.n_features_in_}")
        X = self.member_input(X, reuse=True, prior_columns=prior_columns)
        if self.task == "regression":
            out = np.empty((len(self.members_), X.shape[0]), dtype=np.float32)

            def regress(i: int) -> None:
                out[i] = self._member_regress(self.members_[i], X)

            # Big blocks: the compiled walk (stacked.compile_trees, ~2x faster than XGBoost's
            # predictor), else the stacked booster, else member by member; all give the
            # members' outputs bit for bit.
            big = X.shape[0] >= STACK_MIN_ROWS
            compiled = self._compiled_trees() if big else None
            stacked = self._stacked_trees() if big and compiled is None else None
            if compiled is not None:
                out[:] = compiled.predict(X, workers=max(1, self.n_jobs))
            elif stacked is not None:
                out[:] = stacked.inplace_predict(X).T
            else:
                self._map_members(regress)
            smooth = self._smooth_members(X)
            if smooth is not None:
                w = np.float32(self.smooth_share)
                out *= np.float32(1.0) - w
                out += w * smooth
            if getattr(self, "baseline_", None) is not None:
                out += self._baseline(X)  # the same for every member: the spread is the members'
            return out
        k = self.n_classes_
        outc = np.zeros((len(self.members_), X.shape[0], k), dtype=np.float32)

        def classify(i: int) -> None:
            present = self.member_classes_[i]
            outc[i][:, present] = self._member_proba(self.members_[i], X, present.size)

        # Binary: every member a binary:logistic booster that saw both classes (else
        # stacking refuses), so the stacked booster's columns are each member's P(class 1).
        stacked = self._stacked_trees() if k == 2 and X.shape[0] >= STACK_MIN_ROWS else None
        if stacked is not None:
            p = stacked.inplace_predict(X).T
            outc[:, :, 1] = p
            outc[:, :, 0] = 1.0 - p
        else:
            self._map_members(classify)
        return outc

    def _stacked_trees(self) -> Any:
        """The members' trees as one multi-target booster (same outputs), or None."""
        if self not in _stacked:
            _stacked[self] = stack_boosters(self.members_, nthread=max(1, self.n_jobs)) if self.algorithm == "xgboost" else None
        return _stacked[self]

    def _compiled_trees(self) -> Any:
        """The regression members' trees compiled for the numba walk, or None."""
        if self not in _compiled:
            _compiled[self] = (
                compile_trees(self.members_) if self.algorithm == "xgboost" and self.task == "regression" else None
            )
        return _compiled[self]

    def _map_members(self, fn: Any) -> None:
        # Each XGBoost member predicts on one thread (nthread=1 is saved with it);
        # running members side by side uses all n_jobs cores. ctypes calls into
        # XGBoost release the GIL, so threads suffice.
        workers = max(1, min(self.n_jobs, len(self.members_)))
        if workers == 1 or self.algorithm == "rf":
            for i in range(len(self.members_)):
                fn(i)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fn, range(len(self.members_))))

    def _member_regress(self, member: Any, X: np.ndarray) -> np.ndarray:
        if isinstance(member, xgb.Booster):
            # inplace_predict skips building a DMatrix: the main cost for large pools.
            return member.inplace_predict(X)
        return member.predict(X)

    def _member_proba(self, member: Any, X: np.ndarray, k: int) -> np.ndarray:
        if isinstance(member, _ConstantClassifier):
            return np.ones((X.shape[0], 1), dtype=np.float32)
        if isinstance(member, xgb.Booster):
            p = member.inplace_predict(X)
            if k == 2:
                return np.column_stack([1.0 - p, p])
            return p.reshape(X.shape[0], k)
        return member.predict_proba(X)

    def predict(
        self, X: np.ndarray, *, return_members: bool = True, prior_columns: np.ndarray | None = None
    ) -> Prediction:
        """Mean and spread for X, computed in `chunk_size` row blocks to keep memory flat.
        `prior_columns` (n, prior columns): the prior's columns as stored per compound under
        `prior_key`, NaN where none are; scoring a pool then skips the prior's boosters."""
        self._check_fitted()
        size = max(int(self.chunk_size), 1)
        parts = [
            self._summarise(
                self.predict_members(
                    X[start : start + size],
                    prior_columns=None if prior_columns is None else prior_columns[start : start + size],
                ),
                return_members,
            )
            for start in range(0, max(X.shape[0], 1), size)
        ]
        return _concat(parts, self.task, return_members)

    def predict_value(self, X: np.ndarray) -> np.ndarray:
        """Regression mean or classification label, the sklearn-style point prediction."""
        pred = self.predict(X, return_members=False)
        return pred.mean if isinstance(pred, RegressionPrediction) else pred.labels

    def _summarise(self, members: np.ndarray, keep_members: bool) -> Prediction:
        # Dropping member outputs per chunk is what keeps a 1M-row pool memory-flat.
        if self.task == "regression":
            return RegressionPrediction(
                mean=members.mean(axis=0), std=members.std(axis=0), members=members if keep_members else None
            )
        proba = members.mean(axis=0)
        # Members each sum to 1 up to float error; renormalise so the mean does exactly.
        proba /= proba.sum(axis=1, keepdims=True)
        std = members.std(axis=0)
        return ClassificationPrediction(
            proba=proba,
            labels=proba.argmax(axis=1),
            std=std,
            disagreement=std.mean(axis=1),
            member_proba=members if keep_members else None,
        )


def _as_float32(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    return np.ascontiguousarray(X, dtype=np.float32)


def _concat(parts: list[Prediction], task: str, return_members: bool) -> Prediction:
    if task == "regression":
        regs = [p for p in parts if isinstance(p, RegressionPrediction)]
        return RegressionPrediction(
            mean=np.concatenate([p.mean for p in regs]),
            std=np.concatenate([p.std for p in regs]),
            members=np.concatenate([p.members for p in regs if p.members is not None], axis=1)
            if return_members
            else None,
        )
    clfs = [p for p in parts if isinstance(p, ClassificationPrediction)]
    return ClassificationPrediction(
        proba=np.concatenate([p.proba for p in clfs]),
        labels=np.concatenate([p.labels for p in clfs]),
        std=np.concatenate([p.std for p in clfs]),
        disagreement=np.concatenate([p.disagreement for p in clfs]),
        member_proba=np.concatenate([p.member_proba for p in clfs if p.member_proba is not None], axis=1)
        if return_members
        else None,
    )


def predict_pool(
    ensemble: BootstrapEnsemble,
    spec: FeatureSpec,
    packed_fps: np.ndarray | None,
    stored: np.ndarray | None,
    *,
    chunk_size: int | None = None,
    return_members: bool = False,
) -> Prediction:
    """Score a pool from stored fingerprints/features, building X one chunk at a time.

    A dense X for 1M compounds × 2,250 features would be 9 GB; per chunk it is a
    few hundred MB at most. The caller may also call this per database batch and
    concatenate.
    """
    size = chunk_size or ensemble.chunk_size
    n = packed_fps.shape[0] if packed_fps is not None else (stored.shape[0] if stored is not None else 0)
    parts: list[Prediction] = []
    for start in range(0, max(n, 1), size):
        block_packed = packed_fps[start : start + size] if packed_fps is not None else None
        block_stored = stored[start : start + size] if stored is not None else None
        X = build_matrix(spec, block_packed, block_stored)
        parts.append(ensemble.predict(X, return_members=return_members))
    return _concat(parts, ensemble.task, return_members)
