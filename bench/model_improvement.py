"""Model improvement on solubility (label efficiency), replayed through the product's `simulate`.

Reproduces bench/MODEL_IMPROVEMENT.md: validation = the file's `split == test` rows
(257), pool = the `train` rows (1,025); 50 random initial labels, 20 cycles of 25
(550 labels), the model retrained from scratch after every batch with the product
default (DEFAULT_SPEC, 10-member XGBoost bootstrap ensemble); seeds 0..N-1.

    .venv/bin/python bench/model_improvement.py                  # regression + classification, 5 seeds
    .venv/bin/python bench/model_improvement.py --only regression --seeds 10
    .venv/bin/python bench/model_improvement.py --only regression --seeds 10 --jobs 2 --baselines random \
        --out docs/benchmarks/solubility_prior          # 2026-12-01: the default with the melting-point prior
    .venv/bin/python bench/model_improvement.py --only regression --seeds 10 --jobs 2 --baselines "" --no-preset \
        --arm 'vrall={"strategy": "variance_reduction"}' --also docs/benchmarks/solubility_model_kernel.csv \
        --out /tmp/arms                                 # other schedules beside an earlier run's rows
    .venv/bin/python bench/model_improvement.py --only regression --seeds 5 --jobs 2 --holdout 205 --cycles 14 \
        --out /tmp/heldout                              # choose on the training split, never on the test split
    .venv/bin/python bench/model_improvement.py --only regression --seeds 5 --jobs 2 --holdout 205 --cycles 14 \
        --check-test --out /tmp/check                   # ... and score every version on the test split as well

Regression (logS, validation RMSE vs labels): random, uncertainty, hybrid (spec
default weights), greedy_sampling (iGS, Wu, Lin & Huang 2019; added 2026-11-29, not
the default) and the MODEL_IMPROVEMENT preset's strategy, in one run so they share
one summary (labels to reach random's mean RMSE at 550; normalised area).
Classification (solubility_class, 3 classes; macro ROC-AUC and accuracy vs
labels): random vs the "improve" preset's selection as a classification model gets it.

Runs on its own SQLite database and artifact folder (override with DATABASE_URL /
ARTIFACT_ROOT) so it never touches a developer's data. Writes
docs/benchmarks/solubility.{csv,png,json} and solubility_class.{csv,png,json}, then
prints the tables of bench/MODEL_IMPROVEMENT.md and the wall time per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlmodels.ml import presets  # noqa: E402  (framework-free)

MODEL_IMPROVEMENT = presets.MODEL_IMPROVEMENT
# None so far: classification assays use MODEL_IMPROVEMENT (see bench/MODEL_IMPROVEMENT.md).
CLASSIFICATION_IMPROVEMENT = getattr(presets, "CLASSIFICATION_IMPROVEMENT", None)

DATA = ROOT / "compounds" / "fixtures" / "solubility.csv"
PROTOCOL = ["--initial", "50", "--batch-size", "25"]

# Product default hybrid weights (cycles.strategies.DEFAULT_HYBRID_WEIGHTS) = no params;
# greedy_sampling with its default variant (igs).
BASELINES = ["random", "uncertainty", "hybrid", "greedy_sampling"]


def holdout_csv(data: Path, n_validation: int, seed: int, *, check: bool = False) -> Path:
    """The file's `train` rows only, `n_validation` of them (numpy default_rng(seed), drawn
    without replacement) marked `test` and the rest `train`: a validation set and a pool for
    screening choices without looking at the real test split. Written to a temp file.
    `check`: the test rows follow, marked `check` (simulate scores every version on them
    as `check_rmse`, seen by no strategy); the train rows keep their ids, so seeds replay."""
    import numpy as np

    with data.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    train = [r for r in rows if r["split"] == "train"]
    if not 0 < n_validation < len(train):
        raise SystemExit(f"--holdout must be in 1..{len(train) - 1}, got {n_validation}")
    chosen = set(np.random.default_rng(seed).choice(len(train), n_validation, replace=False).tolist())
    fd, name = tempfile.mkstemp(prefix="chemloop-holdout-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for i, row in enumerate(train):
            writer.writerow({**row, "split": "test" if i in chosen else "train"})
        if check:
            writer.writerows({**row, "split": "check"} for row in rows if row["split"] == "test")
    return Path(name)


def run(
    args: list[str], env: dict[str, str], *, jobs: int = 1, seeds: int = 5, also: list[Path] | None = None
) -> float:
    """One `simulate` over every strategy and seed, or (jobs > 1) one process per
    (strategy, seed), each on its own SQLite file, merged into the same outputs.
    `also`: CSVs of earlier runs of the same protocol whose rows join the outputs (a
    strategy's seeds replay exactly, so a baseline need not run again)."""
    t = time.time()
    if jobs <= 1:
        cmd = ["nice", "-n", "19", sys.executable, "manage.py", "simulate", *args, "--seeds", str(seeds)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        if also:
            out = Path(args[args.index("--out") + 1])
            merge([out.with_suffix(".csv"), *also], out, lower_is_better="--task" not in args)
        return time.time() - t
    strategies = [args[i + 1] for i, a in enumerate(args) if a == "--strategy"]
    rest = [a for i, a in enumerate(args) if a != "--strategy" and (i == 0 or args[i - 1] != "--strategy")]
    out = Path(rest[rest.index("--out") + 1])
    rest = rest[: rest.index("--out")] + rest[rest.index("--out") + 2 :]
    tmp = Path(tempfile.mkdtemp(prefix="chemloop-mi-"))

    def one(task: tuple[str, int]) -> Path:
        strategy, seed = task
        prefix = tmp / f"{strategy}_{seed}"
        sub_env = {**env, "DATABASE_URL": f"sqlite:///{prefix}.sqlite3", "ARTIFACT_ROOT": f"{prefix}-artifacts",
                   "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=sub_env, check=True)
        cmd = ["nice", "-n", "19", sys.executable, "manage.py", "simulate", *rest, "--strategy", strategy,
               "--seeds", "1", "--first-seed", str(seed), "--out", str(prefix)]
        print("$", " ".join(cmd), flush=True)
        with open(f"{prefix}.log", "w") as log:
            subprocess.run(cmd, cwd=ROOT, env=sub_env, check=True, stdout=log, stderr=subprocess.STDOUT)
        return prefix.with_suffix(".csv")

    tasks = [(strategy, seed) for seed in range(seeds) for strategy in strategies]
    with ThreadPoolExecutor(jobs) as pool:
        parts = list(pool.map(one, tasks))
    merge([*parts, *(also or [])], out, lower_is_better="--task" not in rest)
    shutil.rmtree(tmp, ignore_errors=True)
    return time.time() - t


def merge(parts: list[Path], out: Path, *, lower_is_better: bool) -> None:
    """Per-(strategy, seed) CSVs -> one CSV, plot and summary JSON, as one `simulate` writes them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from cycles.services import simulate as sim

    fixed = ("strategy", "seed", "step", "labels", "metric", "value", "seconds")
    rows = []
    for part in parts:
        with part.open() as fh:
            for r in csv.DictReader(fh):
                extra = {k: float(v) for k, v in r.items() if k not in fixed and v not in ("", "None", None)}
                rows.append(sim.SimulationRow(
                    r["strategy"], int(r["seed"]), int(r["step"]), int(r["labels"]), r["metric"],
                    float(r["value"]) if r["value"] not in ("", "None") else None, extra, float(r["seconds"]),
                ))
    summary = sim.summarize(rows, lower_is_better=lower_is_better)
    sim.write_csv(rows, out.with_suffix(".csv"))
    metric = rows[0].metric if rows else "metric"
    sim.plot(summary, out.with_suffix(".png"), title=f"solubility.csv: {metric} vs labels", ylabel=metric)
    out.with_suffix(".json").write_text(json.dumps({"summary": summary}, indent=2))


def preset_args(preset: dict) -> list[str]:
    return ["--members", str(preset["n_members"]), "--algorithm", preset["algorithm"],
            "--featurizer", json.dumps(preset["featurizer"]),
            "--hyperparameters", json.dumps(preset["hyperparameters"])]


def label(preset: dict) -> str:
    """uncertainty + ranked_batch -> "uncertainty_ranked"; a plain top-k strategy keeps its name;
    a warm-up schedule is a prefix: "random300_uncertainty_ranked", and a design's target
    other than the pool follows it: "variance_reduction300_validation_uncertainty_ranked"."""
    batch = preset["params"].get("batch", "top")
    name = preset["strategy"] if batch == "top" else f"{preset['strategy']}_{batch.split('_')[0]}"
    # The strategy's own design settings, as the warm-up's: "..._validation_ens4".
    if preset["params"].get("target", "pool") != "pool":
        name += f"_{preset['params']['target']}"
    if preset["params"].get("ensemble_weight"):
        name += f"_ens{preset['params']['ensemble_weight']:g}"
    warmup = preset["params"].get("warmup")
    if not warmup:
        return name
    # A design aimed elsewhere than the pool is another schedule: "..._validation" keeps its
    # rows apart from an earlier run's (--also).
    target = (warmup.get("params") or {}).get("target", "pool")
    return f"{warmup['strategy']}{warmup['until_labeled']}{'' if target == 'pool' else '_' + target}_{name}"


def finals(csv_path: Path, column: str) -> dict[str, list[float]]:
    """strategy -> per-seed value of `column` at the last step."""
    last: dict[tuple[str, int], tuple[int, float]] = {}
    with csv_path.open() as fh:
        for r in csv.DictReader(fh):
            key = (r["strategy"], int(r["seed"]))
            if key not in last or int(r["step"]) >= last[key][0]:
                last[key] = (int(r["step"]), float(r[column]))
    out: dict[str, list[float]] = defaultdict(list)
    for (strategy, _), (_, value) in sorted(last.items()):
        out[strategy].append(value)
    return out


def curve_summary(csv_path: Path, column: str, lower_is_better: bool) -> dict[str, dict[str, float | None]]:
    """Per strategy: labels to reach random's mean final value, normalised area (mean curve)."""
    import numpy as np

    by: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    with csv_path.open() as fh:
        for r in csv.DictReader(fh):
            if r[column] not in ("", "None"):
                by[r["strategy"]][int(r["step"])].append((float(r["labels"]), float(r[column])))
    curves = {s: [(np.mean([x for x, _ in pts]), np.mean([v for _, v in pts])) for _, pts in sorted(steps.items())]
              for s, steps in by.items()}
    target = curves["random"][-1][1] if "random" in curves else None
    out: dict[str, dict[str, float | None]] = {}
    for s, curve in curves.items():
        xs, ys = np.array([x for x, _ in curve]), np.array([y for _, y in curve])
        ok = np.zeros(ys.shape, bool) if target is None else ys <= target if lower_is_better else ys >= target
        out[s] = {"reach": float(xs[np.argmax(ok)]) if ok.any() else None,
                  "area": float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))}
    return out


def table(csv_path: Path, column: str, label: str, lower_is_better: bool) -> None:
    import numpy as np

    summary = curve_summary(csv_path, column, lower_is_better)
    print(f"\n{csv_path.name}: {label}")
    with csv_path.open() as fh:
        last = max(int(r["labels"]) for r in csv.DictReader(fh))
    print(f"| strategy | {label} @{last} (mean ± sd, n) | labels to reach random's {label}@{last} | normalised area |")
    print("|---|---|---|---|")
    for strategy, vals in finals(csv_path, column).items():
        v = np.array(vals)
        s = summary[strategy]
        reach = "no random run" if "random" not in summary else (
            "not reached" if s["reach"] is None else f"{s['reach']:.0f}")
        print(f"| {strategy} | {v.mean():.3f} ± {v.std(ddof=1):.3f} (n={v.size}) | {reach} | {s['area']:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=20, help="batches of 25 after the 50 initial labels")
    ap.add_argument("--holdout", type=int, default=0, metavar="N",
                    help="screen without the test split: validation = N random train rows, pool = the rest")
    ap.add_argument("--holdout-seed", type=int, default=7)
    ap.add_argument("--check-test", action="store_true",
                    help="with --holdout: score every version on the test split as well (check_rmse), "
                         "a yardstick no strategy sees")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes: > 1 runs every (strategy, seed) in its own process and SQLite file")
    ap.add_argument("--only", choices=["regression", "classification"], default=None)
    ap.add_argument("--baselines", default=",".join(BASELINES),
                    help="regression: comma-separated strategies run beside the preset (default: %(default)s)")
    ap.add_argument("--arm", action="append", default=[], metavar="NAME=JSON",
                    help="regression: also run this schedule under NAME (simulate params, e.g. "
                         "'vr450={\"strategy\": \"uncertainty\", \"warmup\": {\"strategy\": "
                         "\"variance_reduction\", \"until_labeled\": 450}}'); repeatable")
    ap.add_argument("--no-preset", action="store_true", help="regression: do not run the preset's strategy")
    ap.add_argument("--also", action="append", default=[], type=Path, metavar="CSV",
                    help="regression: merge an earlier run's rows (same protocol) into the outputs; repeatable")
    ap.add_argument("--out", default="docs/benchmarks/solubility")
    ap.add_argument("--cls-strategy", default=None,
                    help="classification: compare this strategy (default: the MODEL_IMPROVEMENT preset) with random")
    opts = ap.parse_args()
    arms: dict[str, dict] = {}
    for arm in opts.arm:
        arm_name, sep, arm_params = arm.partition("=")
        if not sep or not arm_name:
            ap.error(f"--arm {arm!r}: expected NAME=JSON")
        try:
            arms[arm_name] = json.loads(arm_params)
        except json.JSONDecodeError as exc:
            ap.error(f"--arm {arm_name}: {exc}")
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "sqlite:////tmp/solub.sqlite3")
    env.setdefault("ARTIFACT_ROOT", "/tmp/solub-artifacts")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if opts.check_test and not opts.holdout:
        ap.error("--check-test needs --holdout (without it the test split is the validation set)")
    data = holdout_csv(opts.data, opts.holdout, opts.holdout_seed, check=opts.check_test) if opts.holdout else opts.data
    common = ["--data", str(data), *PROTOCOL, "--cycles", str(opts.cycles)]
    if opts.only in (None, "regression"):
        preset = MODEL_IMPROVEMENT
        # The preset runs under its own label (e.g. "uncertainty_ranked") so its tuned
        # params never replace a plain baseline's (simulate: a "strategy" key in params
        # names the real strategy behind a label).
        name = label(preset)
        params = {name: {"strategy": preset["strategy"], **preset["params"]}, **arms}
        args = [*common, "--assay", "logS", *preset_args(preset), "--params", json.dumps(params),
                "--out", opts.out]
        for s in dict.fromkeys([*filter(None, opts.baselines.split(",")), *arms, *([] if opts.no_preset else [name])]):
            args += ["--strategy", s]
        wall = run(args, env, jobs=opts.jobs, seeds=opts.seeds, also=opts.also)
        print(f"regression run: {wall:.0f} s wall")
        table(ROOT / f"{opts.out}.csv", "value", "RMSE", lower_is_better=True)
        if opts.check_test:
            table(ROOT / f"{opts.out}.csv", "check_rmse", "check RMSE (test split, seen by no strategy)",
                  lower_is_better=True)
    if opts.only in (None, "classification"):
        # The "improve" preset is goal-based, so a classification assay gets the same
        # selection (uncertainty = normalised entropy) unless a classification preset exists.
        preset = CLASSIFICATION_IMPROVEMENT or (
            MODEL_IMPROVEMENT if opts.cls_strategy is None
            else {**MODEL_IMPROVEMENT, "strategy": opts.cls_strategy, "params": {}}
        )
        out = f"{opts.out}_class"
        args = [*common, "--assay", "solubility_class", "--task", "classification", *preset_args(preset),
                "--strategy", "random", "--strategy", label(preset),
                "--params", json.dumps({label(preset): {"strategy": preset["strategy"], **preset["params"]}}),
                "--out", out]
        wall = run(args, env, jobs=opts.jobs, seeds=opts.seeds)
        print(f"classification run: {wall:.0f} s wall")
        table(ROOT / f"{out}.csv", "value", "macro ROC-AUC", lower_is_better=False)
        table(ROOT / f"{out}.csv", "accuracy", "accuracy", lower_is_better=False)
    if data != opts.data:
        data.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
