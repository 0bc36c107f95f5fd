"""The kernel half's ensemble mean from the bootstraps or from a fit on all rows (`smooth_all_rows`).

Paired arms of the default solubility ensemble (`physchem.ensemble_kwargs(DEFAULT_SPEC)`),
differing only in `smooth_all_rows` (0: the members' bootstraps alone, the default
before 2026-12-02; 0.5; 1: the default). Same test split, subsets and fold seeds as
bench/melting_point_prior.py:

    .venv/bin/python bench/kernel_all_rows.py                  # subsets + test, ≈ 6 min on 2 cores
    .venv/bin/python bench/kernel_all_rows.py cv               # 5-fold CV, fold seeds 0-4, ≈ 6 min

Prints, per row, the mean RMSE of share 0 and each other share's paired difference
(mean ± standard error, how many seeds or subsets it is better in).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import default_solubility  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402

SHARES = (0.0, 0.5, 1.0)


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def report(label: str, res: dict[float, list[float]]) -> None:
    base = np.array(res[0.0])
    line = f"| {label} | {base.mean():.4f} |"
    for share in SHARES[1:]:
        d = np.array(res[share]) - base
        line += f" {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f} ({int((d < 0).sum())} of {d.size}) |"
    print(line, flush=True)


def main() -> None:
    which = set(sys.argv[1:]) or {"subsets", "test"}
    started = time.perf_counter()
    sol = default_solubility()
    X, tr, te, y, kwargs = sol.X, sol.train, sol.test, sol.y, sol.kwargs

    def fit_score(share: float, idx: np.ndarray, seed: int, target: np.ndarray) -> np.ndarray:
        model = BootstrapEnsemble(random_state=seed, smooth_all_rows=share, **kwargs).fit(X[idx], y[idx])
        return model.predict(X[target]).mean

    print("| what (logS RMSE) | share 0 | " + " | ".join(f"share {s} − share 0" for s in SHARES[1:]) + " |")
    print("|---|---:|" + "---:|" * (len(SHARES) - 1))
    if "subsets" in which:
        for size in (150, 375, 550):
            subsets = [(np.random.default_rng(100 + k).choice(tr, size, replace=False), k) for k in range(8)]
            res = {s: [rmse(fit_score(s, i, k, te), y[te]) for i, k in subsets] for s in SHARES}
            report(f"test split, {size} random training compounds, 8 subsets", res)
    if "test" in which:
        res = {s: [rmse(fit_score(s, tr, k, te), y[te]) for k in range(5)] for s in SHARES}
        report(f"test split, {tr.size:,} training compounds, ensemble seeds 0-4", res)
    if "cv" in which:
        res = {s: [] for s in SHARES}
        for cv_seed in range(5):
            for s in SHARES:
                oof = np.zeros(tr.size)
                for fold, (i, j) in enumerate(KFold(5, shuffle=True, random_state=cv_seed).split(tr)):
                    oof[j] = fit_score(s, tr[i], fold, tr[j])
                res[s].append(rmse(oof, y[tr]))
        report("5-fold CV on the training split, fold seeds 0-4", res)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
