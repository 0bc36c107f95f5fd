"""The smooth half of a regression member: kernel ridge on quantile-normalised descriptors.

Boosted trees are step functions; on logS they and a smooth RBF-kernel model make
different errors, and their average beats both (5-fold CV on the solubility training
split, see BENCHMARKS.md "Model quality"). A full kernel model costs one kernel
evaluation per training compound at predict time, far too slow for a 1M pool, so
this is a Nyström kernel ridge with a FIXED set of landmarks shared by all members:

* `KernelBasis` (fit once per ensemble, on X only, no targets): the non-binary,
  non-constant columns (descriptors; 0/1 fingerprint bits are left to the trees),
  a per-column quantile table that maps each value to a normal score (NaN -> 0, the
  median), `n_landmarks` training rows as landmarks and the RBF kernel between them.
  `kernel(X)` is the (n, n_landmarks) RBF kernel to the landmarks: computed once
  per predict block, whatever the number of members.
* Each member then only stores `n_landmarks` weights and an intercept, fit by
  `fit_kernel_ridge` on its own bootstrap rows: the member's smooth prediction is
  `kernel(X) @ coef + intercept`, so the member spread still reflects the bootstrap.

Far from every landmark the kernel is ~0 and the smooth part falls back to the
member's intercept: the trees decide there, and the member spread with them.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import ndtri

from .compiled import kernel, split_rows


@kernel
def _normal_scores(
    X: np.ndarray,
    columns: np.ndarray,
    knots: np.ndarray,
    scores: np.ndarray,
    slopes: np.ndarray,
    offsets: np.ndarray,
    guide: np.ndarray,
    guide_lo: np.ndarray,
    guide_scale: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through KernelBasis.transform
    """out[i, c] = np.interp(X[i, columns[c]], knots_c, scores_c), NaN -> 0, 0 for a
    one-knot column; knots_c = knots[offsets[c]:offsets[c + 1]] (strictly increasing).

    Row by row over X as it is stored (no column gather), and the same float64
    arithmetic as numpy's interp (its slope formula, computed once per interval as
    numpy does: `slopes[a]` = (scores[a + 1] - scores[a]) / (knots[a + 1] - knots[a]),
    and its exact-knot and end cases), so the same values; releases the GIL so rows
    can go to threads.

    The knot interval is found through `guide` (see `_interval_guide`): the value's
    bucket on an even grid over the knots names the few knots it can lie between, so a
    search takes ~2 steps instead of ~8. The two loops after it make the interval exact
    whatever the bucket's rounding: the result is the last knot <= x, as before.
    """
    n_buckets = guide.shape[1] - 1
    for i in range(X.shape[0]):
        for c in range(columns.shape[0]):
            lo, hi = offsets[c], offsets[c + 1]
            x = np.float64(X[i, columns[c]])
            if hi - lo == 1 or np.isnan(x):
                out[i, c] = 0.0
                continue
            if x < knots[lo]:
                r = scores[lo]
            elif x >= knots[hi - 1]:
                r = scores[hi - 1]
            else:
                b = int((x - guide_lo[c]) * guide_scale[c])
                b = 0 if b < 0 else (n_buckets - 1 if b >= n_buckets else b)
                # The last knot <= x within the bucket's knots; branch-free halving.
                a = guide[c, b]
                n = guide[c, b + 1] - a + 1
                while n > 1:
                    half = n >> 1
                    a = a + half if knots[a + half] <= x else a
                    n -= half
                while a > lo and knots[a] > x:
                    a -= 1
                while a + 1 < hi - 1 and knots[a + 1] <= x:
                    a += 1
                r = scores[a] if knots[a] == x else slopes[a] * (x - knots[a]) + scores[a]
            out[i, c] = 0.0 if np.isnan(r) else r


GUIDE_BUCKETS = 256


def _interval_guide(knots: list[np.ndarray], offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column, an even grid of GUIDE_BUCKETS over [first knot, last knot]: guide[c, b] is
    the last knot (global index, at most the second to last) at or below bucket b's lower
    edge, guide[c, GUIDE_BUCKETS] the second to last knot; plus each grid's start and
    buckets per unit. One-knot columns get an unused row."""
    guide = np.zeros((len(knots), GUIDE_BUCKETS + 1), dtype=np.int64)
    start = np.zeros(len(knots))
    scale = np.zeros(len(knots))
    for c, k in enumerate(knots):
        k = k.astype(np.float64)
        if k.size < 2:
            continue
        start[c] = k[0]
        # Finite: float32 knots are at least ~1e-45 apart.
        scale[c] = GUIDE_BUCKETS / (k[-1] - k[0])
        edges = k[0] + np.arange(GUIDE_BUCKETS + 1) / scale[c]
        last = np.clip(np.searchsorted(k, edges, side="right") - 1, 0, k.size - 2)
        last[-1] = k.size - 2
        guide[c] = offsets[c] + last
    return guide, start, scale


@kernel
def _rbf_exponent(
    e: np.ndarray, row_term: np.ndarray, landmark_term: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through KernelBasis.kernel
    """e[i, j] = min(e[i, j] - row_term[i] - landmark_term[j], 0) in place: one pass
    where numpy made three, same operations in the same order."""
    for i in range(e.shape[0]):
        r = row_term[i]
        for j in range(e.shape[1]):
            v = e[i, j] - r
            v -= landmark_term[j]
            e[i, j] = v if v < 0.0 else 0.0


class KernelBasis:
    """Shared quantile-normal transform + RBF landmarks (see the module docstring).

    Plain attributes only (arrays and numbers), so it pickles with the ensemble.
    """

    def __init__(self, *, n_landmarks: int = 512, gamma: float = 0.8, n_quantiles: int = 200) -> None:
        self.n_landmarks = n_landmarks
        self.gamma = gamma  # multiple of 1 / (n_columns * variance): sklearn's gamma="scale"
        self.n_quantiles = n_quantiles

    @staticmethod
    def usable_columns(X: np.ndarray) -> np.ndarray:
        """Columns with more than two distinct finite values (not bits, not constant)."""
        cols = []
        for j in range(X.shape[1]):
            col = X[:, j]
            col = col[np.isfinite(col)]
            if col.size and np.unique(col[: min(col.size, 5000)]).size > 2:
                cols.append(j)
        return np.asarray(cols, dtype=np.int64)

    def fit(
        self, X: np.ndarray, columns: np.ndarray, seed: int, *, weights: np.ndarray | None = None
    ) -> KernelBasis:
        """`weights` (one per column, default 1) scale the columns' normal scores, so a
        column with weight w counts as w**2 columns in the RBF distance; gamma is still
        set from the unweighted scores, so weighting some columns leaves the others'
        length scale as it was."""
        self.columns_ = np.asarray(columns, dtype=np.int64)
        self.weights_ = None
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != self.columns_.shape or not np.all(weights > 0):
                raise ValueError("weights must be one positive number per basis column")
        Z = np.asarray(X[:, self.columns_], dtype=np.float64)
        probs = np.linspace(0.0, 1.0, self.n_quantiles)
        # Normal scores of the quantile levels, the ends pulled in so they stay finite.
        eps = 0.5 / Z.shape[0]
        refs = ndtri(np.clip(probs, eps, 1.0 - eps))
        self.knots_: list[np.ndarray] = []
        self.scores_: list[np.ndarray] = []
        for j in range(Z.shape[1]):
            col = Z[:, j]
            col = col[np.isfinite(col)]
            q = np.quantile(col, probs) if col.size else np.zeros(1)
            # Tied quantiles (e.g. a count that is 0 for 60 % of compounds) share the
            # mean score of their levels, so np.interp gets strictly increasing knots.
            knots, inverse = np.unique(q, return_inverse=True)
            scores = np.bincount(inverse, weights=refs) / np.bincount(inverse)
            self.knots_.append(knots.astype(np.float32))
            self.scores_.append(scores.astype(np.float32))
        T = self.transform(X)
        # gamma as a multiple of sklearn's "scale": 1 / (n_columns * variance of T).
        self.gamma_ = float(self.gamma / (T.shape[1] * max(float(T.var()), 1e-12)))
        if weights is not None:
            self.weights_ = weights
            T *= weights
        rng = np.random.default_rng(seed)
        unique_rows = np.unique(T, axis=0)
        m = min(self.n_landmarks, unique_rows.shape[0])
        self.landmarks_ = np.ascontiguousarray(
            unique_rows[np.sort(rng.choice(unique_rows.shape[0], m, replace=False))], dtype=np.float64
        )
        self.landmark_sq_ = (self.landmarks_**2).sum(axis=1)
        return self

    def transform(self, X: np.ndarray, *, workers: int | None = None) -> np.ndarray:
        """Quantile-normal scores of the basis columns, float64 (n, n_columns); NaN -> 0.

        Each column is np.interp over its knots (see `_normal_scores`), rows split over
        threads; the values do not depend on the split.
        """
        # float32 X (what the ensemble passes) is read as is; anything else as float64.
        X = np.ascontiguousarray(X, dtype=np.float32 if X.dtype == np.float32 else np.float64)
        out = np.empty((X.shape[0], self.columns_.size), dtype=np.float64)
        sizes = [k.size for k in self.knots_]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # float64 as np.interp computes; the stored knots are float32.
        knots = np.concatenate(self.knots_).astype(np.float64)
        scores = np.concatenate(self.scores_).astype(np.float64)
        guide, guide_lo, guide_scale = _interval_guide(self.knots_, offsets)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Across column boundaries the value is never read (a < the column's last knot).
            slopes = np.append((scores[1:] - scores[:-1]) / (knots[1:] - knots[:-1]), 0.0)
        split_rows(
            lambda lo, hi: _normal_scores(
                X[lo:hi], self.columns_, knots, scores, slopes, offsets, guide, guide_lo, guide_scale, out[lo:hi]
            ),
            X.shape[0],
            workers=workers,
        )
        weights = getattr(self, "weights_", None)  # bases pickled before weights have none
        if weights is not None:
            out *= weights
        return out

    def kernel(self, X: np.ndarray, *, workers: int | None = None) -> np.ndarray:
        """RBF kernel of X's rows to the landmarks, float64 (n, n_landmarks).

        float64 on purpose: the ridge weights can be large and of both signs, so
        float32 BLAS rounding (which depends on a row's position in the block) would
        make a compound's score depend on how the pool was chunked (~1e-5).
        """
        T = self.transform(X, workers=workers)
        g = self.gamma_
        # exp(-g |t - l|^2) = exp(2g t.l - g |t|^2 - g |l|^2), in place after one GEMM.
        e = T @ (2.0 * g * self.landmarks_).T
        row_term = g * (T * T).sum(axis=1)
        landmark_term = g * self.landmark_sq_

        def finish(lo: int, hi: int) -> None:
            _rbf_exponent(e[lo:hi], row_term[lo:hi], landmark_term)
            np.exp(e[lo:hi], out=e[lo:hi])  # numpy's exp releases the GIL too

        split_rows(finish, e.shape[0], workers=workers)
        return e

    def gram(self) -> np.ndarray:
        """Kernel between the landmarks (float64), for the Nyström ridge solve."""
        L = self.landmarks_
        d = (L * L).sum(axis=1)[:, None] + (L * L).sum(axis=1)[None, :] - 2.0 * L @ L.T
        return np.exp(-self.gamma_ * np.maximum(d, 0.0))


def nystrom_whitener(gram: np.ndarray) -> np.ndarray:
    """K_mm^(-1/2) (eigenvalues floored), so kernel(X) @ W are Nyström features."""
    w, V = np.linalg.eigh(gram)
    w = np.maximum(w, 1e-6 * max(float(w.max()), 1e-12))
    return (V / np.sqrt(w)) @ V.T


def fit_kernel_ridge(
    P: np.ndarray, y: np.ndarray, whitener: np.ndarray, alpha: float
) -> tuple[np.ndarray, float]:
    """Ridge (with intercept) on Nyström features P = kernel(X) @ whitener.

    Returns (coef, intercept) on the kernel itself: prediction = kernel(X) @ coef +
    intercept, the whitening folded into coef, so predicting costs one
    (n, m) @ (m,) product per member. P is computed once for all rows; members pass
    their bootstrap rows of it.
    """
    mu, y_mean = P.mean(axis=0), float(np.mean(y))
    Pc = P - mu
    A = Pc.T @ Pc
    A[np.diag_indices_from(A)] += alpha
    w = np.linalg.solve(A, Pc.T @ (np.asarray(y, dtype=np.float64) - y_mean))
    coef = whitener @ w
    intercept = y_mean - float(mu @ w)
    return coef, intercept


class MinMaxBasis:
    """MinMax kernel (Tanimoto generalised to counts) of count-fingerprint columns to landmarks.

    k(a, b) = sum(min(a, b)) / sum(max(a, b)) over the first `n_columns` columns of X
    (Morgan / atom-pair counts; on 0/1 bits it is plain Tanimoto). Hit finding on the
    Enamine10k docking set: a kernel ridge on it ranks about as well as the trees, and
    averaging the two (with the descriptor RBF half) finds more of the top-100 than
    either (BENCHMARKS.md, "Hit finding").

    sum(min(a, b)) = sum over t >= 1 of |{i: a_i >= t and b_i >= t}|, so the kernel is a
    few sparse 0/1 products, one per count level the landmarks reach (counts are small:
    on Enamine10k < 2 % of the non-zero counts are >= 4). Integer sums in float64: a
    compound's kernel row does not depend on the block it is computed in.
    """

    def __init__(self, *, n_landmarks: int = 512) -> None:
        self.n_landmarks = n_landmarks

    def _counts(self, X: np.ndarray) -> np.ndarray:
        C = np.asarray(X[:, : self.n_columns_], dtype=np.float64)
        C = np.where(np.isfinite(C), C, 0.0)
        return np.rint(np.maximum(C, 0.0))

    def fit(self, X: np.ndarray, n_columns: int, seed: int) -> MinMaxBasis:
        if not 0 < n_columns <= X.shape[1]:
            raise ValueError(f"count columns must be 1..{X.shape[1]}, got {n_columns!r}")
        self.n_columns_ = int(n_columns)
        C = np.unique(self._counts(X), axis=0)
        rng = np.random.default_rng(seed)
        m = min(self.n_landmarks, C.shape[0])
        L = C[np.sort(rng.choice(C.shape[0], m, replace=False))]
        self.levels_ = int(L.max()) if L.size else 0
        # One sparse 0/1 matrix per count level: landmarks with count >= t.
        self.landmark_levels_ = [sparse.csr_matrix(t <= L, dtype=np.float64) for t in range(1, self.levels_ + 1)]
        self.landmark_sum_ = L.sum(axis=1)
        return self

    def kernel(self, X: np.ndarray) -> np.ndarray:
        """MinMax kernel of X's rows to the landmarks, float64 (n, n_landmarks)."""
        C = self._counts(X)
        mins = np.zeros((C.shape[0], self.landmark_sum_.shape[0]))
        for t, level in enumerate(self.landmark_levels_, start=1):
            rows = sparse.csr_matrix(t <= C, dtype=np.float64)
            if rows.nnz == 0:
                break
            mins += (rows @ level.T).toarray()
        return _minmax_ratio(mins, C.sum(axis=1), self.landmark_sum_)

    def gram(self) -> np.ndarray:
        m = self.landmark_sum_.shape[0]
        mins = np.zeros((m, m))
        for level in self.landmark_levels_:
            mins += (level @ level.T).toarray()
        return _minmax_ratio(mins, self.landmark_sum_, self.landmark_sum_)


def _minmax_ratio(mins: np.ndarray, sum_a: np.ndarray, sum_b: np.ndarray) -> np.ndarray:
    """sum(min) / sum(max), with sum(max) = sum(a) + sum(b) - sum(min); two empty
    fingerprints share nothing: 0, not 0 / 0."""
    union = sum_a[:, None] + sum_b[None, :] - mins
    return np.divide(mins, union, out=np.zeros_like(mins), where=union > 0)
