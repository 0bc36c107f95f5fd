"""How many boosting rounds the physico-chemical prior's two boosters get (mlmodels.ml.physchem).

Paired arms of the default solubility ensemble (`physchem.ensemble_kwargs(DEFAULT_SPEC)`)
that differ only in the prior's boosters: both trained from the shipped data with
`physchem.fit_booster`, but `rounds` rounds at learning rate `eta` (rounds × eta = 15
in every arm). Same test split, subsets and fold seeds as bench/melting_point_prior.py:

    .venv/bin/python bench/prior_rounds.py                      # ≈ 8 min on 2 cores
    .venv/bin/python bench/prior_rounds.py --arms 150:0.1,2400:0.0125 --skip subsets

Prints each arm's boosters' hold-out RMSE (1,000 melting points, 600 log P values, trained
on the rest), then per row the first arm's mean RMSE and each other arm's paired difference
(mean ± standard error, how many seeds or subsets it is better in).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import featurize, load_solubility, parsed  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from mlmodels.ml import ensemble as ensemble_module  # noqa: E402
from mlmodels.ml import physchem  # noqa: E402
from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402
from mlmodels.ml.features import DEFAULT_SPEC, build_matrix  # noqa: E402

ARMS = "150:0.1,600:0.05,1200:0.025,2400:0.0125,4800:0.00625"


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def train(X: np.ndarray, target: np.ndarray, rounds: int, eta: float) -> xgb.Booster:
    booster = physchem.fit_booster(X, target, rounds=rounds, eta=eta)
    booster.set_param({"nthread": 2})  # as the product's cached boosters predict
    return booster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default=ARMS, help="comma-separated rounds:eta (the first is the reference)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: cv, test, subsets")
    args = ap.parse_args()
    arms = [(int(r), float(e)) for r, e in (a.split(":") for a in args.arms.split(","))]
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    tm_smiles, tm = physchem.training_data()
    lp_smiles, lp = physchem.log_p_training_data()
    D_tm, D_lp = physchem.descriptor_block(tm_smiles), physchem.descriptor_block(lp_smiles)
    lp_target = lp - D_lp[:, physchem.LOG_P_COLUMN]  # the booster learns the correction to Crippen
    tm_perm, lp_perm = (np.random.default_rng(0).permutation(n) for n in (len(tm), len(lp)))

    data, mols = parsed(load_solubility())
    f = featurize(mols, DEFAULT_SPEC)
    X = build_matrix(DEFAULT_SPEC, f.packed, f.stored)
    tr, te, y = np.flatnonzero(data.train), np.flatnonzero(~data.train), data.logs
    kwargs = physchem.ensemble_kwargs(DEFAULT_SPEC)

    results: dict[tuple[int, float], dict[str, list[float]]] = {}
    for rounds, eta in arms:
        hold, fit = tm_perm[:1000], tm_perm[1000:]
        tm_rmse = rmse(train(D_tm[fit], tm[fit], rounds, eta).inplace_predict(D_tm[hold]), tm[hold])
        hold, fit = lp_perm[:600], lp_perm[600:]
        lp_rmse = rmse(train(D_lp[fit], lp_target[fit], rounds, eta).inplace_predict(D_lp[hold]), lp_target[hold])
        prior = physchem.PhyschemPrior(train(D_tm, tm, rounds, eta), train(D_lp, lp_target, rounds, eta))
        print(f"{rounds} rounds at eta {eta}: hold-out melting point {tm_rmse:.1f} K, log P {lp_rmse:.3f}", flush=True)
        # The ensemble takes its prior from load_prior(); this arm's boosters instead.
        ensemble_module.load_prior = lambda prior=prior: prior

        def fit_score(idx: np.ndarray, seed: int, target: np.ndarray) -> np.ndarray:
            return BootstrapEnsemble(random_state=seed, **kwargs).fit(X[idx], y[idx]).predict(X[target]).mean

        res: dict[str, list[float]] = {}
        if "test" not in skip:
            res[f"test split, {tr.size:,} training compounds, ensemble seeds 0-4"] = [
                rmse(fit_score(tr, k, te), y[te]) for k in range(5)
            ]
        if "cv" not in skip:
            cv = []
            for cv_seed in range(5):
                oof = np.zeros(tr.size)
                for fold, (i, j) in enumerate(KFold(5, shuffle=True, random_state=cv_seed).split(tr)):
                    oof[j] = fit_score(tr[i], fold, tr[j])
                cv.append(rmse(oof, y[tr]))
            res["5-fold CV on the training split, fold seeds 0-4"] = cv
        if "subsets" not in skip:
            for size in (150, 375):
                subsets = [np.random.default_rng(100 + k).choice(tr, size, replace=False) for k in range(8)]
                res[f"test split, {size} random training compounds, 8 subsets"] = [
                    rmse(fit_score(idx, k, te), y[te]) for k, idx in enumerate(subsets)
                ]
        results[(rounds, eta)] = res

    first = arms[0]
    print(f"\n| what (logS RMSE) | {first[0]} @ {first[1]} | " + " | ".join(f"{r} @ {e} − {first[0]} @ {first[1]}" for r, e in arms[1:]) + " |")
    print("|---|---:|" + "---:|" * (len(arms) - 1))
    for row, base in results[first].items():
        line = f"| {row} | {np.mean(base):.4f} |"
        for arm in arms[1:]:
            d = np.array(results[arm][row]) - np.array(base)
            line += f" {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f} ({int((d < 0).sum())} of {d.size}) |"
        print(line)
    for arm in arms:
        print(f"{arm[0]} @ {arm[1]}: " + "; ".join(f"{row}: {[round(x, 4) for x in v]}" for row, v in results[arm].items()))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
