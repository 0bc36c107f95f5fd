"""Hit finding on Enamine10k (MolPAL protocol), replayed through the product's `simulate`.

Reproduces BENCHMARKS.md "Hit finding": 1 % random initial set, 5 acquisitions of
1 % each, model retrained from scratch each time, % of the true top-100 (lowest
Vina scores) found among all acquired compounds; random as the baseline.

    .venv/bin/python bench/hit_finding.py                 # preset greedy + random, 5 seeds
    .venv/bin/python bench/hit_finding.py --seeds 10 --reference   # + greedy on DEFAULT_SPEC

Runs on its own SQLite database and artifact folder (override with DATABASE_URL /
ARTIFACT_ROOT) so it never touches a developer's data. Writes
docs/benchmarks/hitfinding.{csv,png,json} (and hitfinding_reference.* with
--reference) and prints mean ± sd and seconds per seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlmodels.ml.presets import HIT_FINDING  # noqa: E402  (framework-free)

DATA = Path(os.environ.get("CHEMLOOP_SHARED", ROOT.parent / "shared")) / "data" / "Enamine10k_scores.csv.gz"
PROTOCOL = ["--assay", "score", "--mode", "find", "--direction", "minimize", "--initial", "0.01",
            "--batch-size", "0.01", "--cycles", "5", "--top-k", "100"]


def run(args: list[str], env: dict[str, str]) -> None:
    cmd = ["nice", "-n", "10", sys.executable, "manage.py", "simulate", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def per_seed(csv_path: Path) -> dict[str, list[tuple[int, float, float]]]:
    """strategy -> [(seed, final % found, wall seconds)] from a simulate CSV."""
    last: dict[tuple[str, int], tuple[int, float, float]] = {}
    with csv_path.open() as fh:
        for r in csv.DictReader(fh):
            key = (r["strategy"], int(r["seed"]))
            if key not in last or int(r["step"]) >= last[key][0]:
                last[key] = (int(r["step"]), float(r["value"]), float(r["seconds"]))
    out: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for (strategy, seed), (_, value, secs) in sorted(last.items()):
        out[strategy].append((seed, value, secs))
    return out


def report(csv_path: Path) -> None:
    import numpy as np

    for strategy, rows in per_seed(csv_path).items():
        vals = np.array([v for _, v, _ in rows])
        secs = np.array([s for _, _, s in rows])
        print(f"{csv_path.name} {strategy:>8}: {vals.mean():.1f} ± {vals.std(ddof=1):.1f} % of top-100 "
              f"(n={vals.size}; per seed {vals.tolist()}); {secs.mean():.0f} s/seed (max {secs.max():.0f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--reference", action="store_true", help="also greedy with the plain default featurizer")
    ap.add_argument("--out", default="docs/benchmarks/hitfinding")
    opts = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "sqlite:////tmp/hitfind.sqlite3")
    env.setdefault("ARTIFACT_ROOT", "/tmp/hitfind-artifacts")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    common = ["--data", str(opts.data), *PROTOCOL, "--seeds", str(opts.seeds)]
    t = time.time()
    run([*common, "--strategy", HIT_FINDING["strategy"], "--strategy", "random",
         "--members", str(HIT_FINDING["n_members"]), "--algorithm", HIT_FINDING["algorithm"],
         "--featurizer", json.dumps(HIT_FINDING["featurizer"]),
         "--hyperparameters", json.dumps(HIT_FINDING["hyperparameters"]),
         "--params", json.dumps({HIT_FINDING["strategy"]: HIT_FINDING["params"]}),
         "--out", opts.out], env)
    print(f"preset run: {time.time() - t:.0f} s wall")
    report(ROOT / f"{opts.out}.csv")
    if opts.reference:
        t = time.time()
        run([*common, "--strategy", "greedy", "--members", "10", "--out", f"{opts.out}_reference"], env)
        print(f"reference run: {time.time() - t:.0f} s wall")
        report(ROOT / f"{opts.out}_reference.csv")


if __name__ == "__main__":
    main()
