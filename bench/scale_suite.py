"""Every scale figure of issue 8 on this machine, back to back, as one markdown table.

    python bench/scale_suite.py [--score-runs 3] [--skip import,web]

Runs the scale benchmarks as they are run one by one (each its own process, so each
starts cold as a user's command would) and collects the lines they print: 1M scoring
(`score_pool.py`, several runs: this machine's speed drifts by up to a third within an
hour, so every run is listed), selection on the 1M pool with and without an RQ worker
(`select_pool.py`), import of 100,000 compounds twice (`import_throughput.py`), the queue
page and label submissions under load (`web_load.py`) and a retrain (`retrain.py`).

Needs the bench set-up (`bash bench/scale_setup.sh`, ≈ 25–45 min): /tmp/pool1m.smi and
/tmp/pool100k.smi from make_pool.py, the pool imported into chemloop_bench, its substructure
screens and features filled. Takes ~10–17 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (key for --skip, name, script and arguments, the regexes whose first group is a figure, goal)
SUITE: list[tuple[str, str, list[str], list[str], str]] = [
    ("score", "score 1M", ["score_pool.py", "/tmp/pool1m.smi"], [r"in ([\d.]+ s) →"], "≤ 30 s"),
    (
        "select",
        "selection on 1M (one process / + 1 worker)",
        ["select_pool.py", "--workers", "0", "1"],
        [r"\(one process\):.*→ ([\d.]+ s)", r"worker\(s\)\):.*→ ([\d.]+ s)"],
        "≤ 45 s",
    ),
    (
        "import",
        "import 100k",
        ["import_throughput.py", "/tmp/pool100k.smi"],
        [r"→ ([\d,]+ compounds/s)", r"end-to-end / bare = (\d+ ?%)"],
        "≥ 3,000/s",
    ),
    (
        "web",
        "queue page p95 / label submissions",
        ["web_load.py", "--duration", "30"],
        [r"lead session\):\n.*p95=([\d.]+)", r"different item per request\):\n\{\"requests_per_s\": ([\d.]+)",
         r"different item per request\):\n.*errors_status=(\d+)"],
        "p95 ≤ 100 ms; ≥ 150/s, 0 errors",
    ),
    ("retrain", "retrain 10 members on 5,010 labels", ["retrain.py"], [r"members in ([\d.]+ s) \("], "≤ 20 s"),
]


def run(script: list[str]) -> str:
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chemloop_bench")}
    if script[0] == "import_throughput.py":
        env.pop("DATABASE_URL")  # it always uses its own database
    done = subprocess.run([sys.executable, *script], cwd=HERE, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(script)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--score-runs", type=int, default=3)
    parser.add_argument("--import-runs", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated: score,select,import,web,retrain")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    repeats = {"score": args.score_runs, "import": args.import_runs}
    rows = []
    for key, name, script, patterns, goal in SUITE:
        if key in skip:
            continue
        figures = []
        for _ in range(repeats.get(key, 1)):
            out = run(script)
            found = [m.group(1) if (m := re.search(p, out)) else "?" for p in patterns]
            figures.append(" / ".join(found))
            print(f"{time.strftime('%H:%M:%S')} {name}: {figures[-1]}", flush=True)
        rows.append((name, "`" + " ".join(script) + "`", "; ".join(figures), goal))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs\n")
    print("| what | command (from `bench/`) | runs | goal |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
