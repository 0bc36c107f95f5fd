"""Set up Django for a benchmark script against its own PostgreSQL database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup(db_name: str = "chemloop_bench") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{db_name}")
    os.environ.setdefault("DEBUG", "false")
    import subprocess

    subprocess.run(
        [sys.executable, str(ROOT / "bin" / "ensure_database.py")], check=True, env={**os.environ}
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
