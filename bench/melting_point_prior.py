"""What the physico-chemical prior (mlmodels.ml.physchem) does for the default solubility model.

Four arms, paired (same folds, subsets and ensemble seeds): no prior; the eleventh
session's prior (learned melting point, GSE with Crippen log P); the twelfth session's
(learned melting point and log P, GSE with both, appended as plain columns); the default,
the product's own path (`physchem.ensemble_kwargs`: the same three columns, weighted 4x in
the kernel half, and the members learning around half a line in the GSE column).

    .venv/bin/python bench/melting_point_prior.py                        # ≈ 7 min on 2 cores
    .venv/bin/python bench/melting_point_prior.py --skip cv,subsets      # the quick parts
    .venv/bin/python bench/melting_point_prior.py --measured chemicals-1.5.2-py3-none-any.whl

1. booster: the boosters' hold-out RMSE (1,000 of the shipped melting points, 600 of the
   log P values), trained on the rest with the product's settings.
2. cv: 5-fold CV on the 1,024 training compounds, fold seeds 0-4 (`KFold(5, shuffle=True,
   random_state=s)`, `BootstrapEnsemble(random_state=fold)`).
3. test: the 257 test compounds, ensemble seeds 0-4.
4. subsets: 8 random subsets of 150, 375 and 550 training compounds (the active-learning
   budgets), scored on the test split.
5. --measured WHEEL: a ceiling, not a model the product could use: the same ensemble with
   the *measured* melting point and log P (the data in the `chemicals` wheel, matched by
   connectivity; the boosters' value where none is known) in place of the predicted ones.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from build_prior_data import (  # noqa: E402
    LOG_P,
    MELTING_POINTS,
    MORE_IDENTIFIERS,
    PUBCHEM,
    connectivity,
    read_values,
    structures,
)
from model_quality import featurize, load_solubility, parsed  # noqa: E402
from rdkit import Chem  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from mlmodels.ml import physchem  # noqa: E402
from mlmodels.ml.ensemble import BootstrapEnsemble  # noqa: E402
from mlmodels.ml.features import (  # noqa: E402
    DEFAULT_SPEC,
    build_matrix,
)

WITH = physchem.ensemble_kwargs(DEFAULT_SPEC)
WITHOUT = {"melting_point_prior": False}
OFFSET = WITH["descriptor_offset"]


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def _diff(a: list[float], b: list[float]) -> str:
    d = np.array(b) - np.array(a)
    return f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f} ({int((d < 0).sum())} of {d.size} better)"


def paired(label: str, *arms: list[float]) -> None:
    """Means of each arm, then the last arm against each earlier one."""
    means = " | ".join(f"{np.mean(a):.4f}" for a in arms)
    diffs = " | ".join(_diff(a, arms[-1]) for a in arms[:-1])
    print(f"| {label} | {means} | {diffs} |", flush=True)


def booster_holdout() -> None:
    smiles, tm = physchem.training_data()
    X = physchem.descriptor_block(smiles)
    perm = np.random.default_rng(0).permutation(len(tm))
    hold, fit = perm[:1000], perm[1000:]
    booster = physchem.fit_booster(X[fit], tm[fit])
    pred = booster.inplace_predict(X[hold])
    print(
        f"melting-point booster: {len(fit):,} training rows, hold-out RMSE {rmse(pred, tm[hold]):.1f} K "
        f"(sd of the hold-out {tm[hold].std():.1f} K)",
        flush=True,
    )
    smiles, lp = physchem.log_p_training_data()
    X = physchem.descriptor_block(smiles)
    perm = np.random.default_rng(0).permutation(len(lp))
    hold, fit = perm[:600], perm[600:]
    booster = physchem.train_log_p_booster([smiles[i] for i in fit], lp[fit])
    pred = X[hold, physchem.LOG_P_COLUMN] + booster.inplace_predict(X[hold])
    print(
        f"log P booster: {len(fit):,} training rows, hold-out RMSE {rmse(pred, lp[hold]):.3f} "
        f"(Crippen {rmse(X[hold, physchem.LOG_P_COLUMN], lp[hold]):.3f}, sd of the hold-out {lp[hold].std():.2f})\n",
        flush=True,
    )


def _measured(wheel: Path, table: str, column: str, mols: list) -> np.ndarray:
    """The wheel's measured value of each compound (NaN if unknown), matched by connectivity."""
    with zipfile.ZipFile(wheel) as z:
        values = read_values(z, table, column)
        cas_smiles = structures(z, PUBCHEM + MORE_IDENTIFIERS, values)
    by_key: dict[str, list[float]] = {}
    for cas, smiles in cas_smiles.items():
        if (m := Chem.MolFromSmiles(smiles)) is not None:
            by_key.setdefault(connectivity(m), []).append(values[cas])
    keys = [connectivity(m) for m in mols]
    return np.array([float(np.median(by_key[k])) if k in by_key else np.nan for k in keys])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", default="", help="comma-separated: booster, cv, test, subsets")
    parser.add_argument("--measured", type=Path, help="chemicals-1.5.2 wheel: the measured-value ceiling")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    if "booster" not in skip:
        booster_holdout()
    data, mols = parsed(load_solubility())
    f = featurize(mols, DEFAULT_SPEC)
    X = build_matrix(DEFAULT_SPEC, f.packed, f.stored)
    tr, te, y = np.flatnonzero(data.train), np.flatnonzero(~data.train), data.logs
    prior = physchem.load_prior()
    # The eleventh session's prior, exactly as its models appended it: the same melting-point booster.
    X_tm = physchem.PhyschemPrior(prior.booster).augment(X, OFFSET)
    # The first three arms fit the plain ensemble on their own X, so they differ in the columns
    # only; the default is the product's ensemble on plain X (it appends the columns itself).
    arms = {
        "none": (X, WITHOUT),
        "melting point only": (X_tm, WITHOUT),
        "melting point + log P as columns": (prior.augment(X, OFFSET), WITHOUT),
        "default": (X, WITH),
    }

    def fit_score(idx: np.ndarray, seed: int, target: np.ndarray, arm: tuple[np.ndarray, dict]) -> np.ndarray:
        Xs, kwargs = arm
        return BootstrapEnsemble(random_state=seed, **kwargs).fit(Xs[idx], y[idx]).predict(Xs[target]).mean

    def scores(idx_seeds: list[tuple[np.ndarray, int]], target: np.ndarray) -> list[list[float]]:
        return [[rmse(fit_score(i, s, target, arm), y[target]) for i, s in idx_seeds] for arm in arms.values()]

    names = list(arms)
    print(f"| what (logS RMSE) | {' | '.join(names)} | " + " | ".join(f"default − {n}" for n in names[:-1]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1))
    if "test" not in skip:
        paired(f"test split, {tr.size:,} training compounds, ensemble seeds 0-4", *scores([(tr, s) for s in range(5)], te))
    if "cv" not in skip:
        cv: list[list[float]] = [[] for _ in arms]
        for cv_seed in range(5):
            for k, arm in enumerate(arms.values()):
                oof = np.zeros(tr.size)
                for fold, (i, j) in enumerate(KFold(5, shuffle=True, random_state=cv_seed).split(tr)):
                    oof[j] = fit_score(tr[i], fold, tr[j], arm)
                cv[k].append(rmse(oof, y[tr]))
        paired("5-fold CV on the training split, fold seeds 0-4", *cv)
    if "subsets" not in skip:
        for size in (150, 375, 550):
            subsets = [(np.random.default_rng(100 + k).choice(tr, size, replace=False), k) for k in range(8)]
            paired(f"test split, {size} random training compounds, 8 subsets", *scores(subsets, te))
    if args.measured:
        tm = _measured(args.measured, MELTING_POINTS, "Tm", mols)
        lp = _measured(args.measured, LOG_P, "logP", mols)
        cols = prior.columns(X, OFFSET)
        for label, measured, col, unit in (("melting point", tm, 0, "K"), ("log P", lp, 1, "")):
            known = np.isfinite(measured)
            print(
                f"\nmeasured {label} for {known.sum()} of {known.size} compounds (learned vs measured there: "
                f"RMSE {rmse(cols[known, col], measured[known]):.3f} {unit}"
                + (f"; Crippen {rmse(X[known, OFFSET + physchem.LOG_P_COLUMN], measured[known]):.3f})" if col else ")")
            )
        tm_m = np.where(np.isfinite(tm), tm, cols[:, 0])
        lp_m = np.where(np.isfinite(lp), lp, cols[:, 1])
        # Appended as plain columns, as the twelfth session measured the ceiling.
        arms = {
            "learned": arms["melting point + log P as columns"],
            "measured Tm": (
                np.column_stack([X, tm_m, cols[:, 1], physchem.gse_log_s(tm_m, cols[:, 1])]).astype(np.float32),
                WITHOUT,
            ),
            "measured Tm and log P": (
                np.column_stack([X, tm_m, lp_m, physchem.gse_log_s(tm_m, lp_m)]).astype(np.float32),
                WITHOUT,
            ),
        }
        print("\nceiling: the default's three columns from measured values where known")
        print("| what | " + " | ".join(arms) + " | measured Tm and log P − learned | measured Tm and log P − measured Tm |")
        print("|---|---:|---:|---:|---:|---:|")
        learned, m_tm, m_both = scores([(tr, s) for s in range(5)], te)
        print(
            f"| test split, ensemble seeds 0-4 | {np.mean(learned):.4f} | {np.mean(m_tm):.4f} | {np.mean(m_both):.4f} | "
            f"{_diff(learned, m_both)} | {_diff(m_tm, m_both)} |",
            flush=True,
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
