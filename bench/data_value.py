"""Which labels make a 375-label set good, and can a selection know it? (issue 8, feasibility)

`subset_spread.py` found that only the best ~6 % of random 375-label subsets of the
solubility pool reach random's RMSE at 550 labels. This script asks what those
subsets have in common. It estimates every pool compound's *value* for a target set
of compounds: the mean RMSE of the random subsets that leave it out minus the mean
RMSE of those that contain it (a Banzhaf-style data value over many random subsets).
Then it checks:

1. reliability: two independent halves of the subsets give the same values?
2. transfer: the validation set (257 `test` compounds) is cut in two random halves
   A and B. Are the compounds that help predict A the ones that help predict B?
   What does a set picked for A score on B, against random sets of the same size?
3. label-free correlates: does the value follow anything a strategy could see before
   labelling (pool density, outlyingness, leverage)?
4. with the product's default ensemble (`--ensemble-check`): the set picked for A,
   fit with `BootstrapEnsemble`, scored on A and on B.

Thousands of fits need a cheap model: an exact RBF kernel ridge on the default
ensemble's smooth-half view of the descriptors (`KernelBasis`, fit on the pool,
label-free), alpha 0.1. At 375 random labels it scores 0.638 on the test split,
the default ensemble 0.617 (`subset_spread.py`), so it is a proxy, not the product.

    OMP_NUM_THREADS=1 .venv/bin/python bench/data_value.py --ensemble-check   # ≈ 5 min

Not the product path and never a strategy: a value needs the validation labels.
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


def rbf(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    d2 = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2.0 * A @ B.T
    return np.exp(-gamma * np.maximum(d2, 0.0))


class Proxy:
    """Exact kernel ridge with the kernels precomputed once for the whole pool."""

    def __init__(self, K_pool: np.ndarray, K_target: np.ndarray, y: np.ndarray, alpha: float) -> None:
        self.K_pool, self.K_target, self.y, self.alpha = K_pool, K_target, y, alpha

    def predict(self, idx: np.ndarray) -> np.ndarray:
        K = self.K_pool[np.ix_(idx, idx)]
        mean = self.y[idx].mean()
        coef = np.linalg.solve(K + self.alpha * np.eye(idx.size), self.y[idx] - mean)
        return self.K_target[:, idx] @ coef + mean


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def values(member: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mean score of the subsets without each compound minus the mean of those with it."""
    with_it = (member * scores[:, None]).sum(0) / member.sum(0)
    without = ((~member) * scores[:, None]).sum(0) / (~member).sum(0)
    return without - with_it


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=375, help="labels per random subset")
    parser.add_argument("--subsets", type=int, default=40000)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ensemble-check", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()

    data, mols = parsed(load_solubility())
    f = featurize(mols, DEFAULT_SPEC)
    X = build_matrix(DEFAULT_SPEC, f.packed, f.stored)
    Xtr, Xte = X[data.train], X[~data.train]
    ytr, yte = data.logs[data.train].astype(np.float64), data.logs[~data.train].astype(np.float64)
    basis = KernelBasis().fit(Xtr, KernelBasis.usable_columns(Xtr), seed=0)
    Ztr, Zte = basis.transform(Xtr), basis.transform(Xte)
    K_pool = rbf(Ztr, Ztr, basis.gamma_)
    proxy = Proxy(K_pool, rbf(Zte, Ztr, basis.gamma_), ytr, args.alpha)

    rng = np.random.default_rng(args.seed)
    halves = rng.permutation(yte.size)
    half = {"A": halves[: yte.size // 2], "B": halves[yte.size // 2 :]}
    n_pool = ytr.size
    member = np.zeros((args.subsets, n_pool), dtype=bool)
    scores = {name: np.zeros(args.subsets) for name in ("all", "A", "B")}
    for k in range(args.subsets):
        idx = rng.choice(n_pool, args.size, replace=False)
        member[k, idx] = True
        err2 = (proxy.predict(idx) - yte) ** 2
        scores["all"][k] = np.sqrt(err2.mean())
        for name, rows in half.items():
            scores[name][k] = np.sqrt(err2[rows].mean())
    r = scores["all"]
    print(
        f"proxy, {args.subsets} random subsets of {args.size}: test RMSE {r.mean():.3f} ± {r.std(ddof=1):.3f} "
        f"({time.perf_counter() - started:.0f} s)"
    )

    first, second = slice(0, args.subsets // 2), slice(args.subsets // 2, None)
    print("\n1. reliability (Spearman between values from two disjoint halves of the subsets)")
    for name in ("all", "A", "B"):
        rho = spearmanr(values(member[first], scores[name][first]), values(member[second], scores[name][second]))[0]
        print(f"   value for {name:3s}: {rho:+.2f}")
    rho_ab = spearmanr(values(member[first], scores["A"][first]), values(member[second], scores["B"][second]))[0]
    print(f"   value for A vs value for B (same disjoint subset halves): {rho_ab:+.2f}")

    value = {name: values(member, scores[name]) for name in ("all", "A", "B")}
    print("\n2. transfer: the compounds worth most for one half, fit with the proxy, scored on both halves")
    print("   labels | picked for A: on A, on B | picked for B: on A, on B | random (200 sets): on A, on B")
    picked_for_a = {n: np.argsort(-value["A"])[:n] for n in (args.size, 550)}
    for n in (args.size, 550):
        row = []
        for target in ("A", "B"):
            pred = proxy.predict(np.argsort(-value[target])[:n])
            row += [rmse(pred[half["A"]], yte[half["A"]]), rmse(pred[half["B"]], yte[half["B"]])]
        rand = []
        for k in range(200):
            pred = proxy.predict(np.random.default_rng(5000 + k).choice(n_pool, n, replace=False))
            rand.append([rmse(pred[half[h]], yte[half[h]]) for h in ("A", "B")])
        ra, rb = np.mean(rand, axis=0)
        print(f"   {n:6d} | {row[0]:.3f}, {row[1]:.3f} | {row[2]:.3f}, {row[3]:.3f} | {ra:.3f}, {rb:.3f}")
    top = np.argsort(-value["all"])[: args.size]
    print(f"   the {args.size} worth most for the whole test split, on it: {rmse(proxy.predict(top), yte):.3f}")

    print("\n3. label-free properties vs the value for the whole test split (Spearman)")
    hat = K_pool @ np.linalg.inv(K_pool + args.alpha * np.eye(n_pool))
    props = {
        "pool density (mean kernel to the pool)": K_pool.mean(1),
        "similarity to 5 nearest pool neighbours": np.sort(K_pool, axis=1)[:, -6:-1].mean(1),
        "outlyingness (norm of the normal scores)": np.linalg.norm(Ztr, axis=1),
        "leverage (diagonal of the hat matrix)": np.diag(hat),
        "for reference, label-dependent: |logS - median|": np.abs(ytr - np.median(ytr)),
    }
    for label, prop in props.items():
        print(f"   {label:50s} {spearmanr(prop, value['all'])[0]:+.3f}")

    if args.ensemble_check:
        print("\n4. the default ensemble (BootstrapEnsemble, 10 members) on the sets picked for A")
        for n, idx in picked_for_a.items():
            pred = BootstrapEnsemble(random_state=0).fit(Xtr[idx], ytr[idx]).predict(Xte).mean
            rand = []
            for k in range(5):
                ridx = np.random.default_rng(5000 + k).choice(n_pool, n, replace=False)
                p = BootstrapEnsemble(random_state=k).fit(Xtr[ridx], ytr[ridx]).predict(Xte).mean
                rand.append([rmse(p[half[h]], yte[half[h]]) for h in ("A", "B")])
            ra, rb = np.mean(rand, axis=0)
            print(
                f"   {n} labels picked for A: on A {rmse(pred[half['A']], yte[half['A']]):.3f}, "
                f"on B {rmse(pred[half['B']], yte[half['B']]):.3f} | random (5 sets): on A {ra:.3f}, on B {rb:.3f}"
            )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
