"""What the melting-point prior (mlmodels.ml.physchem) does for the default solubility model.

    .venv/bin/python bench/melting_point_prior.py                        # ≈ 25 min on 2 cores
    .venv/bin/python bench/melting_point_prior.py --skip cv,subsets      # the quick parts
    .venv/bin/python bench/melting_point_prior.py --measured chemicals-1.5.2-py3-none-any.whl

1. booster: its hold-out RMSE on 1,000 of the shipped melting points, trained on the rest
   with the product's settings.
2. cv: 5-fold CV on the 1,024 training compounds, fold seeds 0-4 (`KFold(5, shuffle=True,
   random_state=s)`, `BootstrapEnsemble(random_state=fold)`), default with vs without the
   prior, paired.
3. test: the 257 test compounds, ensemble seeds 0-4, with vs without.
4. subsets: 8 random subsets of 150, 375 and 550 training compounds (the active-learning
   budgets), each fit with and without, scored on the test split.
5. --measured WHEEL: a ceiling, not a model the product could use: the same ensemble with
   the *measured* melting point (Bradley's data in the `chemicals` wheel, matched by
   connectivity; the booster's value where none is known) in place of the predicted one.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from model_quality import featurize, load_solubility, parsed  # noqa: E402
from rdkit import Chem  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from mlmodels.ml import physchem  # noqa: E402
from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402
from mlmodels.ml.features import (  # noqa: E402
    DEFAULT_SPEC,
    SPECS,
    build_matrix,
    compute_stored_features,
    descriptor_names,
    mols_from_smiles,
)

WITH = physchem.ensemble_kwargs(DEFAULT_SPEC)
WITHOUT = {"melting_point_prior": False}


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def paired(label: str, a: list[float], b: list[float]) -> None:
    d = np.array(b) - np.array(a)
    print(
        f"| {label} | {np.mean(a):.4f} | {np.mean(b):.4f} | {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f} | "
        f"{int((d < 0).sum())} of {d.size} |",
        flush=True,
    )


def booster_holdout() -> None:
    import xgboost as xgb

    smiles, tm = physchem.training_data()
    X = np.stack([compute_stored_features(m, SPECS["desc_fast"]) for m in mols_from_smiles(smiles)])
    perm = np.random.default_rng(0).permutation(len(tm))
    hold, fit = perm[:1000], perm[1000:]
    booster = xgb.train(physchem.BOOSTER_PARAMS, xgb.DMatrix(X[fit], label=tm[fit]), physchem.N_ROUNDS)
    pred = booster.inplace_predict(X[hold])
    print(
        f"melting-point booster: {len(fit):,} training rows, hold-out RMSE {rmse(pred, tm[hold]):.1f} K "
        f"(sd of the hold-out {tm[hold].std():.1f} K)\n",
        flush=True,
    )


def measured_melting_points(wheel: Path, mols: list) -> np.ndarray:
    """Bradley's measured Tm of each compound (NaN if unknown), matched by connectivity."""
    with zipfile.ZipFile(wheel) as z:
        with z.open("chemicals/Phase Change/OpenNotebook Melting Points.tsv") as fh:
            tm = {r["CAS"]: float(r["Tm"]) for r in csv.DictReader(io.TextIOWrapper(fh, "utf-8"), delimiter="\t")}
        by_key: dict[str, list[float]] = {}
        for name in ("large", "small"):
            with z.open(f"chemicals/Identifiers/chemical identifiers pubchem {name}.tsv") as fh:
                for line in io.TextIOWrapper(fh, "utf-8"):
                    parts = line.split("\t")
                    if len(parts) > 4 and parts[1] in tm and (m := Chem.MolFromSmiles(parts[4])) is not None:
                        by_key.setdefault(Chem.MolToInchiKey(m).split("-")[0], []).append(tm[parts[1]])
    keys = [Chem.MolToInchiKey(m).split("-")[0] for m in mols]
    return np.array([float(np.median(by_key[k])) if k in by_key else np.nan for k in keys])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", default="", help="comma-separated: booster, cv, test, subsets")
    parser.add_argument("--measured", type=Path, help="chemicals-1.5.2 wheel: the measured-Tm ceiling")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    if "booster" not in skip:
        booster_holdout()
    data, mols = parsed(load_solubility())
    f = featurize(mols, DEFAULT_SPEC)
    X = build_matrix(DEFAULT_SPEC, f.packed, f.stored)
    tr, te, y = np.flatnonzero(data.train), np.flatnonzero(~data.train), data.logs

    def fit_score(idx: np.ndarray, seed: int, kwargs: dict, target: np.ndarray, Xs: np.ndarray = X) -> np.ndarray:
        return BootstrapEnsemble(random_state=seed, **kwargs).fit(Xs[idx], y[idx]).predict(Xs[target]).mean

    print("| what (logS RMSE) | without the prior | with | paired difference ± se | runs better with |")
    print("|---|---:|---:|---:|---:|")
    if "test" not in skip:
        a = [rmse(fit_score(tr, s, WITHOUT, te), y[te]) for s in range(5)]
        b = [rmse(fit_score(tr, s, WITH, te), y[te]) for s in range(5)]
        paired(f"test split, {tr.size:,} training compounds, ensemble seeds 0-4", a, b)
    if "cv" not in skip:
        a, b = [], []
        for cv_seed in range(5):
            oof = {False: np.zeros(tr.size), True: np.zeros(tr.size)}
            for fold, (i, j) in enumerate(KFold(5, shuffle=True, random_state=cv_seed).split(tr)):
                for on, kwargs in ((False, WITHOUT), (True, WITH)):
                    oof[on][j] = fit_score(tr[i], fold, kwargs, tr[j])
            a.append(rmse(oof[False], y[tr]))
            b.append(rmse(oof[True], y[tr]))
        paired("5-fold CV on the training split, fold seeds 0-4", a, b)
    if "subsets" not in skip:
        for size in (150, 375, 550):
            a, b = [], []
            for k in range(8):
                sub = np.random.default_rng(100 + k).choice(tr, size, replace=False)
                a.append(rmse(fit_score(sub, k, WITHOUT, te), y[te]))
                b.append(rmse(fit_score(sub, k, WITH, te), y[te]))
            paired(f"test split, {size} random training compounds, 8 subsets", a, b)
    if args.measured:
        measured = measured_melting_points(args.measured, mols)
        prior = physchem.load_prior()
        cols = prior.columns(X, WITH["descriptor_offset"])
        tm = np.where(np.isfinite(measured), measured, cols[:, 0])
        known = np.isfinite(measured)
        logp = X[:, WITH["descriptor_offset"] + descriptor_names(physchem.DESCRIPTORS).index("MolLogP")]
        Xm = np.column_stack([X, tm, physchem.gse_log_s(tm, logp)]).astype(np.float32)
        Xp = prior.augment(X, WITH["descriptor_offset"])
        print(
            f"\nceiling: measured melting points for {known.sum()} of {known.size} compounds "
            f"(predicted vs measured there: RMSE {rmse(cols[known, 0], measured[known]):.1f} K)"
        )
        a = [rmse(fit_score(tr, s, WITHOUT, te, Xp), y[te]) for s in range(5)]
        b = [rmse(fit_score(tr, s, WITHOUT, te, Xm), y[te]) for s in range(5)]
        print("| what | predicted Tm (the prior) | measured Tm | paired difference ± se | runs better |")
        print("|---|---:|---:|---:|---:|")
        paired("test split, ensemble seeds 0-4", a, b)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
