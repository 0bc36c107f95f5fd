"""Web under load: gunicorn (2 workers) + wrk (20 connections) against PostgreSQL.

    python bench/web_load.py [--items 10000] [--duration 30]

Needs the bench database with the big pool imported (bench/score_pool.py or
`import_compounds /tmp/pool1m.smi` with DATABASE_URL=…/chemloop_bench). Creates
an active model row and `items` open queue items over pool compounds, then
measures (1) the queue page, filtered and paginated, signed in as a lead:
p50/p95/p99 latency; (2) label submissions over the REST API with a token, each
request labeling a different item: submissions/second and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The session made here must be valid for the gunicorn server: one secret for both.
BENCH_SECRET = "bench-" + "k" * 50
os.environ["SECRET_KEY"] = BENCH_SECRET

import _django  # noqa: E402 - after the secret is set

ROOT = Path(__file__).resolve().parents[1]
PORT = 8765
LUA_PERCENTILES = """
done = function(summary, latency, requests)
  io.write(string.format("LAT p50=%.2f p95=%.2f p99=%.2f ms\\n",
    latency:percentile(50)/1000, latency:percentile(95)/1000, latency:percentile(99)/1000))
  io.write(string.format("REQ total=%d errors_status=%d\\n", summary.requests, summary.errors.status))
end
"""
LUA_LABEL = """
local ids = {}
local counter = 0
local token = os.getenv("BENCH_TOKEN")
local started = 0
setup = function(thread)
  thread:set("tid", started)
  started = started + 1
end
init = function(args)
  local f = io.open(args[1], "r")
  for line in f:lines() do table.insert(ids, line) end
  f:close()
  -- each thread labels its own half of the items: no two requests for one item
  counter = tid * math.floor(#ids / tonumber(args[2]))
end
request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", "/api/active-learning/queue/" .. id .. "/label/",
    {["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json"},
    '{"value": -3.2, "source": "experimental", "confidence": "high"}')
end
""" + LUA_PERCENTILES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per gunicorn worker (gunicorn's gthread worker above 1; 1 is its sync worker)")
    parser.add_argument("--no-analyze", action="store_true",
                        help="leave the refilled queue table's statistics stale (as on this machine without autovacuum)")
    args = parser.parse_args()
    _django.setup()
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from compounds.models import Compound
    from compounds.services import assay_get_or_create
    from labeling.models import LabelQueueItem
    from labeling.services import QueueEntry, queue_items_add
    from mlmodels.models import MLModel, ValidationSet

    n_compounds = Compound.objects.count()
    assay = assay_get_or_create(name="bench web logS")
    model = MLModel.objects.filter(name="bench web", status="active").first()
    if model is None:
        vs = ValidationSet.objects.create(assay=assay, name="bench web validation")
        model = MLModel.objects.create(name="bench web", assay=assay, validation_set=vs, status="active")
    LabelQueueItem.objects.filter(model=model).delete()
    ids = list(Compound.objects.order_by("id").values_list("id", flat=True)[: args.items])
    rng = random.Random(0)
    queue_items_add(model=model, cycle=None, selection_batch=1, strategy="uncertainty", entries=[
        QueueEntry(compound_id=c, priority_score=rng.random(), prediction=rng.gauss(-3, 1), uncertainty=rng.random())
        for c in ids
    ])
    # This machine's PostgreSQL runs with autovacuum off, so nothing would ever analyze the
    # queue table these items just replaced, and the planner, expecting one open item, joins
    # every open item before sorting (58 ms a queue page instead of 3, measured). A server
    # with autovacuum analyzes a table that changed this much within a minute, long before
    # a team has labeled the queue a selection filled.
    if not args.no_analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE label_queue")
    lead, _ = User.objects.get_or_create(username="bench-web-lead", defaults={"is_staff": True})
    lead.groups.add(Group.objects.get_or_create(name="lead")[0])
    sci, _ = User.objects.get_or_create(username="bench-web-scientist")
    sci.groups.add(Group.objects.get_or_create(name="scientist")[0])
    token, _ = Token.objects.get_or_create(user=sci)
    session = SessionStore()
    session["_auth_user_id"] = str(lead.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = lead.get_session_auth_hash()
    session.save()
    item_ids = [str(i) for i in LabelQueueItem.objects.filter(model=model).values_list("id", flat=True)]
    print(f"database: {n_compounds:,} compounds, {len(item_ids):,} open queue items for {model}")

    # Redis as in production: the shared cache holds sessions and queue pages.
    env = {"REDIS_URL": _django.BENCH_REDIS_URL, **os.environ,
           "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": BENCH_SECRET,
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false", "DEBUG": "false"}
    # Production serves hashed static files (whitenoise manifest): collect them first.
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-w", "2", "--threads", str(args.threads),
         "-b", f"127.0.0.1:{PORT}",
         "--log-level", "warning"], cwd=ROOT, env=env)
    tmp = Path(tempfile.mkdtemp())
    try:
        time.sleep(4)
        (tmp / "pct.lua").write_text(LUA_PERCENTILES)
        (tmp / "label.lua").write_text(LUA_LABEL)
        (tmp / "ids.txt").write_text("\n".join(item_ids))
        url = f"http://127.0.0.1:{PORT}/queue/?status=open&model={model.pk}&sort=priority&page=7"
        out = subprocess.run(
            ["wrk", "-t2", "-c20", f"-d{args.duration}s", "-s", str(tmp / "pct.lua"),
             "-H", f"Cookie: sessionid={session.session_key}", url],
            capture_output=True, text=True, check=True).stdout
        status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-b",
                                 f"sessionid={session.session_key}", url], capture_output=True, text=True).stdout
        assert status == "200", f"queue page answered {status}, not 200 (session not accepted?)"
        print("queue page (20 connections, filtered + paginated, lead session):")
        print(_summary(out))
        out = subprocess.run(
            ["wrk", "-t2", "-c20", f"-d{min(args.duration, 20)}s", "-s", str(tmp / "label.lua"),
             f"http://127.0.0.1:{PORT}", "--", str(tmp / "ids.txt"), "2"],
            capture_output=True, text=True, check=True, env={**os.environ, "BENCH_TOKEN": token.key}).stdout
        print("label submissions (20 connections, REST API with a token, a different item per request):")
        print(_summary(out))
        labeled = LabelQueueItem.objects.filter(model=model, status="labeled").count()
        print(f"items labeled in the database: {labeled:,}")
        # The queue page is cached per queue version and every label bumps it: measure the
        # page again while labels keep arriving, so most reads render instead of hitting.
        time.sleep(3)  # let the labels still in flight when wrk stopped commit
        still_open = LabelQueueItem.objects.filter(model=model, status="pending").values_list("id", flat=True)
        (tmp / "open-ids.txt").write_text("\n".join(str(i) for i in still_open))
        labels = subprocess.Popen(
            ["wrk", "-t1", "-c2", f"-d{args.duration}s", "-s", str(tmp / "label.lua"),
             f"http://127.0.0.1:{PORT}", "--", str(tmp / "open-ids.txt"), "1"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "BENCH_TOKEN": token.key})
        out = subprocess.run(
            ["wrk", "-t2", "-c20", f"-d{args.duration}s", "-s", str(tmp / "pct.lua"),
             "-H", f"Cookie: sessionid={session.session_key}", url],
            capture_output=True, text=True, check=True).stdout
        label_out, _ = labels.communicate(timeout=args.duration + 60)
        print("queue page (20 connections) while 2 more connections submit labels (cache invalidated by each label):")
        print(_summary(out))
        print("  the label submissions beside it:", _summary(label_out))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def _summary(out: str) -> str:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = re.search(r"LAT (.*)", out)
    req = re.search(r"REQ (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return json.dumps({"requests_per_s": float(rps.group(1)) if rps else None, "latency": lat.group(1) if lat else None,
                       "requests": req.group(1) if req else None, "non_2xx": int(non2xx.group(1)) if non2xx else 0})


if __name__ == "__main__":
    main()
