"""Set up Django for a benchmark script against its own PostgreSQL database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
# The bench scripts' Redis database (development uses 0; test runs pick 1-15 by process id).
BENCH_REDIS_URL = "redis://127.0.0.1:6379/9"


def jobs_to_rq() -> None:
    """Send jobs to RQ on the bench Redis (unless REDIS_URL says otherwise), never into the
    calling process: a job run in threads of a timed process would be timed with it."""
    os.environ.setdefault("REDIS_URL", BENCH_REDIS_URL)


def setup(db_name: str = "chemloop_bench", *, own_database: bool = False) -> None:
    """Django on the bench database; `own_database` forces `db_name` even when DATABASE_URL
    names another one (same server), for benchmarks that empty their tables."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{db_name}")
    if own_database:
        url = urlsplit(os.environ["DATABASE_URL"])
        os.environ["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{db_name}"))
    os.environ.setdefault("DEBUG", "false")
    import subprocess

    subprocess.run(
        [sys.executable, str(ROOT / "bin" / "ensure_database.py")], check=True, env={**os.environ}
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
