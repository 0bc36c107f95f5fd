"""How well the default solubility model's intervals hold: raw spread against the predictive std.

The default ensemble (`physchem.ensemble_kwargs(DEFAULT_SPEC)`) is fit on the training split
(all 1,024 compounds, ensemble seeds 0-4) and on random subsets of 150, 300 and 550 of them,
and scored on the 257 test compounds, which neither the members nor the calibration saw:

    .venv/bin/python bench/calibration.py            # ≈ 2 min on 2 cores

Prints, per training size, the share of test values inside mean ± z·std at the nominal levels
50 / 80 / 90 / 95 %, for the raw spread and for the predictive std (`BootstrapEnsemble.predictive_std`,
the spread calibrated on out-of-bag errors), the fitted scale and noise, and the Gaussian
negative log-likelihood per compound (lower is better).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import default_solubility  # noqa: E402

from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402

LEVELS = (0.5, 0.8, 0.9, 0.95)


def coverage(err: np.ndarray, std: np.ndarray) -> list[float]:
    return [float(np.mean(err <= norm.ppf(0.5 + level / 2) * std)) for level in LEVELS]


def nll(err: np.ndarray, std: np.ndarray) -> float:
    return float(np.mean(0.5 * np.log(2 * np.pi * std**2) + err**2 / (2 * std**2)))


def main() -> None:
    started = time.perf_counter()
    sol = default_solubility()
    X, tr, te, y, kwargs = sol.X, sol.train, sol.test, sol.y, sol.kwargs
    runs = [(tr.size, k, tr) for k in range(5)]
    runs += [(size, k, np.random.default_rng(100 + k).choice(tr, size, replace=False)) for size in (150, 300, 550) for k in range(3)]

    rows: dict[int, list[tuple[list[float], list[float], float, float, float, float]]] = {}
    for size, seed, idx in runs:
        ensemble = BootstrapEnsemble(random_state=seed, **kwargs).fit(X[idx], y[idx])
        pred = ensemble.predict(X[te], return_members=False)
        err = np.abs(y[te] - pred.mean)
        std = ensemble.predictive_std(pred.std)
        cal = ensemble.calibration_
        rows.setdefault(size, []).append(
            (coverage(err, pred.std), coverage(err, std), nll(err, pred.std), nll(err, std), cal.scale, cal.noise)
        )
        print(f"{size} compounds, seed {seed}: 95 % coverage {coverage(err, pred.std)[-1]:.3f} → {coverage(err, std)[-1]:.3f}", flush=True)

    head = " | ".join(f"{int(level * 100)} %" for level in LEVELS)
    print(f"\n| training compounds (runs) | std | {head} | NLL per compound | scale | noise |")
    print("|---|---|" + "---:|" * (len(LEVELS) + 3))
    for size, results in sorted(rows.items()):
        raw = np.mean([r[0] for r in results], axis=0)
        calibrated = np.mean([r[1] for r in results], axis=0)
        n = len(results)
        print(f"| {size:,} ({n}) | spread | " + " | ".join(f"{v:.3f}" for v in raw) + f" | {np.mean([r[2] for r in results]):.2f} | | |")
        print(
            f"| {size:,} ({n}) | predictive | " + " | ".join(f"{v:.3f}" for v in calibrated)
            + f" | {np.mean([r[3] for r in results]):.2f} | {np.mean([r[4] for r in results]):.2f}"
            + f" | {np.mean([r[5] for r in results]):.3f} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
