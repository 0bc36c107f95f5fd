"""Paired screen of the default solubility ensemble's settings (any BootstrapEnsemble keyword).

Arms are keyword overrides on top of `physchem.ensemble_kwargs(DEFAULT_SPEC)`, the model
the product trains; the first arm is the reference. Same folds, ensemble seeds and subsets
as bench/prior_rounds.py, so every arm is paired with the reference:

    .venv/bin/python bench/ensemble_params.py --skip test,subsets \\
        --arm 'default={}' --arm 'depth5={"max_depth": 5}' --arm 'slow={"n_estimators": 400, "learning_rate": 0.06}'

Rows: 5-fold CV on the training split (fold seeds 0-4; what defaults are chosen on), the
test split with all 1,024 training compounds (ensemble seeds 0-4), and 8 random subsets
of 150 and 375 training compounds scored on the test split. Prints the reference's mean
RMSE per row and each other arm's paired difference (mean ± standard error, how many
seeds or subsets it is better in).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import default_solubility  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    name, _, params = text.partition("=")
    overrides = json.loads(params or "{}")
    if not name or not isinstance(overrides, dict):
        raise argparse.ArgumentTypeError(f"an arm is NAME=JSON-object, got {text!r}")
    return name, overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", action="append", type=parse_arm, required=True, help="NAME=JSON overrides (repeat)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: cv, test, subsets")
    ap.add_argument("--cv-seeds", type=int, default=5, help="fold seeds 0..N-1")
    args = ap.parse_args()
    arms: list[tuple[str, dict[str, Any]]] = args.arm
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    sol = default_solubility()
    X, tr, te, y, base_kwargs = sol.X, sol.train, sol.test, sol.y, sol.kwargs

    results: dict[str, dict[str, list[float]]] = {}
    for name, overrides in arms:
        kwargs = {**base_kwargs, **overrides}

        def fit_score(idx: np.ndarray, seed: int, target: np.ndarray, kwargs: dict[str, Any] = kwargs) -> np.ndarray:
            return BootstrapEnsemble(random_state=seed, **kwargs).fit(X[idx], y[idx]).predict(X[target]).mean

        res: dict[str, list[float]] = {}
        if "cv" not in skip:
            cv = []
            for cv_seed in range(args.cv_seeds):
                oof = np.zeros(tr.size)
                for fold, (i, j) in enumerate(KFold(5, shuffle=True, random_state=cv_seed).split(tr)):
                    oof[j] = fit_score(tr[i], fold, tr[j])
                cv.append(rmse(oof, y[tr]))
            res[f"5-fold CV on the training split, fold seeds 0-{args.cv_seeds - 1}"] = cv
        if "test" not in skip:
            res[f"test split, {tr.size:,} training compounds, ensemble seeds 0-4"] = [
                rmse(fit_score(tr, k, te), y[te]) for k in range(5)
            ]
        if "subsets" not in skip:
            for size in (150, 375):
                subsets = [np.random.default_rng(100 + k).choice(tr, size, replace=False) for k in range(8)]
                res[f"test split, {size} random training compounds, 8 subsets"] = [
                    rmse(fit_score(idx, k, te), y[te]) for k, idx in enumerate(subsets)
                ]
        results[name] = res
        print(f"{name} {json.dumps(overrides)}: " + "; ".join(f"{row}: {np.mean(v):.4f}" for row, v in res.items()), flush=True)

    first = arms[0][0]
    print(f"\n| what (logS RMSE) | {first} | " + " | ".join(f"{name} − {first}" for name, _ in arms[1:]) + " |")
    print("|---|---:|" + "---:|" * (len(arms) - 1))
    for row, base in results[first].items():
        line = f"| {row} | {np.mean(base):.4f} |"
        for name, _ in arms[1:]:
            d = np.array(results[name][row]) - np.array(base)
            line += f" {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f} ({int((d < 0).sum())} of {d.size}) |"
        print(line)
    for name, _ in arms:
        print(f"{name}: " + "; ".join(f"{row}: {[round(x, 4) for x in v]}" for row, v in results[name].items()))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
