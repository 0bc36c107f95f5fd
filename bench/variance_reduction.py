"""Cost of the `variance_reduction` design at the pool size services hand it.

    python bench/variance_reduction.py [--pool 20000] [--labeled 5000] [--batch 100] [--compare-full]

Framework-free: the model's input matrix of the real solubility compounds
(`DEFAULT_SPEC`), tiled with small noise to the pool and labeled sizes, then one
`strategies.select("variance_reduction", ...)` (the Gaussian-process state twice, for
the scores and the batch, plus the greedy picks). Prints wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "solubility.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", type=int, default=20_000)
    parser.add_argument("--labeled", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--compare-full", action="store_true", help="also run the uncapped greedy and compare")
    args = parser.parse_args()
    import pandas as pd

    from cycles import strategies
    from cycles.strategies import ModelOutputs, select
    from mlmodels.ml.features import DEFAULT_SPEC, featurize_smiles

    X = featurize_smiles(pd.read_csv(DATA).smiles.tolist(), DEFAULT_SPEC)
    rng = np.random.default_rng(0)

    def tiled(n: int) -> np.ndarray:
        rows = X[rng.integers(0, X.shape[0], n)]
        return (rows * (1.0 + 0.01 * rng.standard_normal(rows.shape))).astype(np.float32)

    pool, labeled = tiled(args.pool), tiled(args.labeled)
    outputs = ModelOutputs("regression", mean=np.zeros(args.pool), std=rng.random(args.pool),
                           features=pool, labeled_features=labeled)
    start = time.perf_counter()
    chosen = select("variance_reduction", outputs, args.batch, random_state=0)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"variance_reduction: pool {args.pool:,} x {X.shape[1]} columns, {args.labeled:,} labeled, "
          f"batch {len(chosen.indices)}: {wall:.1f} s wall, peak RSS {peak_mb:,.0f} MB")
    if args.compare_full:
        # The same design with every eligible compound a candidate for every pick.
        strategies._DESIGN_CANDIDATES = 10**9
        start = time.perf_counter()
        full = select("variance_reduction", outputs, args.batch, random_state=0)
        wall = time.perf_counter() - start
        same = len(set(full.indices.tolist()) & set(chosen.indices.tolist()))
        print(f"  full greedy over all {args.pool:,} candidates: {wall:.1f} s wall; "
              f"{same} of {len(full.indices)} picks shared with the capped design")


if __name__ == "__main__":
    main()
