"""How much does *which* compounds are labelled matter on solubility? (issue 8, feasibility)

The model-improvement goal asks the default strategy to reach random's mean RMSE at
550 labels with ≤ 385. This script measures what that asks of a selection: it fits
the product's default ensemble (DEFAULT_SPEC, 10 members, `BootstrapEnsemble`) on many
random subsets of the 1,025 `train` rows and scores each on the 257 `test` rows, then
prints the spread of test RMSE per subset size and how far a label-free property of a
subset (its coverage of the pool in the smooth half's descriptor space) ranks the
subsets. Subset k uses `numpy.random.default_rng(1000 + k)` and
`BootstrapEnsemble(random_state=k)`, so runs are reproducible and sizes can run in
parallel processes:

    OMP_NUM_THREADS=1 .venv/bin/python bench/subset_spread.py --size 375 --subsets 100
    OMP_NUM_THREADS=1 .venv/bin/python bench/subset_spread.py --size 550 --subsets 60

`--smooth-weights 0.5,0.3,0.7` fits every subset once per kernel-ridge weight (the first
is the reference) and prints the paired differences: does the best blend depend on the
number of labels?

Not the product path (no `simulate`, no database): the fits are the same ensemble the
product trains, without the AL loop around it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import featurize, load_solubility, parsed  # noqa: E402

from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402
from mlmodels.ml.features import DEFAULT_SPEC, build_matrix  # noqa: E402
from mlmodels.ml.smooth import KernelBasis  # noqa: E402


def pool_coverage(Z: np.ndarray, idx: np.ndarray) -> float:
    """Mean distance from every pool row to its nearest subset row (lower = better covered)."""
    d2 = (Z**2).sum(1)[:, None] + (Z[idx] ** 2).sum(1)[None, :] - 2.0 * Z @ Z[idx].T
    return float(np.sqrt(np.maximum(d2.min(axis=1), 0.0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=375, help="labels per subset")
    parser.add_argument("--subsets", type=int, default=100)
    parser.add_argument("--smooth-weights", default="0.5", help="comma-separated; the first is the reference")
    args = parser.parse_args()

    data, mols = parsed(load_solubility())
    f = featurize(mols, DEFAULT_SPEC)
    X = build_matrix(DEFAULT_SPEC, f.packed, f.stored)
    Xtr, Xte = X[data.train], X[~data.train]
    ytr, yte = data.logs[data.train], data.logs[~data.train]
    # The smooth half's own view of the descriptors: quantile-normal scores of its columns,
    # fit on the pool only (label-free, as a strategy would see it).
    basis = KernelBasis().fit(Xtr, KernelBasis.usable_columns(Xtr), seed=0)
    Z = basis.transform(Xtr)

    weights = [float(w) for w in args.smooth_weights.split(",")]
    by_weight: dict[float, list[float]] = {w: [] for w in weights}
    cover, started = [], time.perf_counter()
    for k in range(args.subsets):
        idx = np.random.default_rng(1000 + k).choice(len(ytr), args.size, replace=False)
        for w in weights:
            model = BootstrapEnsemble(random_state=k, smooth_weight=w).fit(Xtr[idx], ytr[idx])
            pred = model.predict(Xte).mean
            by_weight[w].append(float(np.sqrt(np.mean((pred - yte) ** 2))))
        cover.append(pool_coverage(Z, idx))
        shown = "  ".join(f"{v[-1]:.4f}" for v in by_weight.values())
        print(f"subset {k:3d}: test RMSE {shown}  pool coverage {cover[-1]:.3f}", flush=True)
    r = np.array(by_weight[weights[0]])
    rho = spearmanr(cover, r)[0]
    print(
        f"\nsize {args.size}, {args.subsets} random subsets: test RMSE {r.mean():.4f} ± {r.std(ddof=1):.4f} "
        f"(min {r.min():.4f}, 5th percentile {np.percentile(r, 5):.4f}, 10th {np.percentile(r, 10):.4f}, "
        f"median {np.median(r):.4f}); Spearman(pool coverage distance, RMSE) {rho:+.3f}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    for w in weights[1:]:
        diff = np.array(by_weight[w]) - r
        print(
            f"smooth_weight {w} vs {weights[0]}: mean RMSE {np.mean(by_weight[w]):.4f}, paired difference "
            f"{diff.mean():+.4f} ± {diff.std(ddof=1) / np.sqrt(diff.size):.4f} (standard error)"
        )


if __name__ == "__main__":
    main()
