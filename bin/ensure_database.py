"""Create the PostgreSQL database named in DATABASE_URL if it does not exist yet."""

import os
import sys
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql

url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chemloop"))
if url.scheme not in ("postgres", "postgresql"):
    sys.exit(0)
name = url.path.lstrip("/") or "chemloop"
conn = psycopg2.connect(
    dbname="postgres", user=url.username or "postgres", password=url.password,
    host=url.hostname or "127.0.0.1", port=url.port or 5432,
)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created database {name}")
conn.close()
