"""Pages and API reads on the big registry: server time of each, best of N.

    python bench/pages.py [--repeat 3]

Runs against the bench database (chemloop_bench: the 1M pool imported by the scoring
benchmarks, see BENCHMARKS.md "Pool scoring") in this process, through Django's test
client signed in as a lead (the whole request cycle: middleware, views, templates,
PostgreSQL; no network, no gunicorn). Prints one Markdown row per request: status,
bytes and the best time. Caches are per process, so the queue page is measured
rendering, not from Redis.
"""

from __future__ import annotations

import argparse
import os
import time

import _django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    _django.setup()
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from compounds.models import Compound, Dataset
    from labeling.models import LabelQueueItem
    from mlmodels.models import MLModel

    lead, _ = User.objects.get_or_create(username="bench-pages-lead", defaults={"is_staff": True})
    if not lead.is_superuser:
        lead.is_staff = lead.is_superuser = True  # the admin changelists too
        lead.save()
    lead.groups.add(Group.objects.get_or_create(name="lead")[0])
    client = Client(HTTP_HOST="localhost")
    client.force_login(lead)

    n = Compound.objects.count()
    last = Compound.objects.order_by("-id").values_list("id", flat=True).first()
    pages = max(n // 25, 1)
    pool = Dataset.objects.filter(name="bench pool pool1m.smi").first()
    model = MLModel.objects.filter(status="active").order_by("-id").first()
    item = LabelQueueItem.objects.order_by("id").first()
    name = Compound.objects.exclude(name="").order_by("-id").values_list("name", flat=True).first() or "aspirin"
    urls = [
        "/compounds/",
        f"/compounds/?page={pages // 2}",
        f"/compounds/?page={pages}",
        f"/compounds/?q={name}",
        "/compounds/?q=aspirin",
        "/compounds/?q=C",
        f"/compounds/{last}/",
        f"/compounds/{last}/similar/",
        f"/models/compound/{last}/predictions/",
        "/queue/",
        "/cycles/",
        "/cycles/select/",
        "/admin/compounds/compound/",
        f"/admin/compounds/compound/?p={pages // 4}",
        f"/admin/compounds/compound/?q={name}",
        "/admin/labeling/labelqueueitem/",
        "/api/compounds/",
        f"/api/compounds/?page={pages // 2}",
        f"/api/compounds/?q={name}",
        "/api/active-learning/queue/",
    ]
    if pool is not None:
        urls.append(f"/compounds/?dataset={pool.pk}&page={pages // 2}")
    if model is not None:
        urls.append(f"/models/{model.pk}/")
    if item is not None:
        urls.append(f"/queue/label/{item.pk}/")
    print(f"registry: {n:,} compounds; {LabelQueueItem.objects.count():,} queue items; best of {args.repeat}\n")
    print("| request | status | bytes | best s |\n| --- | ---: | ---: | ---: |")
    for url in urls:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            best = min(best, time.perf_counter() - start)
        print(f"| `{url}` | {response.status_code} | {len(body):,} | {best:.3f} |", flush=True)


if __name__ == "__main__":
    main()
