"""The `make run` demo database (SQLite) under simultaneous labels: one wins, the rest get
their 409 — none a "database is locked" 503."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_simultaneous_labels_on_sqlite_queue_up_instead_of_failing(tmp_path):  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sqlite_label_race.py")), str(tmp_path / "demo.sqlite3")],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcomes == {"saved": 5, "409": 25}
