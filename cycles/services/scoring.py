"""Score a big pool in id-range chunks shared by any number of RQ workers.

The coordinator (the process running the selection) puts the chunk ranges on a
Redis list, enqueues helper jobs, and then takes chunks from the same list
itself — so with one worker it simply does all the work, and with N workers on
N machines each takes chunks until the list is empty. Results travel back
through Redis as uncompressed numpy archives (`np.savez`, ~28 MB per 100k-id range
with fingerprints). A chunk a helper took but never finished (worker killed) is
scored by the coordinator after a timeout.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max, Min, QuerySet

from compounds.models import Compound
from mlmodels import services as model_services
from mlmodels.models import MLModel

logger = logging.getLogger(__name__)

CHUNK_IDS = 100_000  # compound-id span per chunk
RESULT_TTL = 3600  # seconds results may wait in Redis
STALL_SECONDS = 120  # a taken chunk without a result after this long is redone here
KEY = "chemloop:scoring:{token}:{part}"

ProgressFn = Callable[[str, int], None]


def _redis() -> Any:
    import django_rq

    return django_rq.get_connection("default")


def _score_range(plan: dict[str, Any], lo: int, hi: int) -> bytes:
    from cycles.services.selection import PoolSpec, pool_queryset

    model = MLModel.objects.select_related("assay").get(pk=plan["model_id"])
    pool = PoolSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan["pool"].items()})
    qs, _ = pool_queryset(model=model, pool=pool)
    scores = model_services.model_score_compounds(
        model=model,
        queryset=qs.filter(id__gte=lo, id__lt=hi),
        with_members=plan["with_members"],
        with_fingerprints=plan.get("with_fingerprints", True),
    )
    arrays = {
        k: v
        for k, v in {
            "ids": scores.ids,
            "mean": scores.mean,
            "std": scores.std,
            "proba": scores.proba,
            "member_proba": scores.member_proba,
            "members": scores.members,
            "applicability": scores.applicability,
            "fingerprints": scores.fingerprints,
        }.items()
        if v is not None
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def score_chunks(token: str, *, deadline: float | None = None) -> int:
    """Take chunks off the plan's list until it is empty; returns how many were scored."""
    r = _redis()
    raw = r.get(KEY.format(token=token, part="plan"))
    if raw is None:
        return 0  # the selection finished (or expired) before this helper started
    plan = json.loads(raw)
    done = 0
    while deadline is None or time.monotonic() < deadline:
        item = r.lpop(KEY.format(token=token, part="todo"))
        if item is None:
            break
        lo, hi = json.loads(item)
        r.hset(KEY.format(token=token, part="taken"), f"{lo}", time.time())
        payload = _score_range(plan, lo, hi)
        pipe = r.pipeline()
        pipe.set(KEY.format(token=token, part=f"result:{lo}"), payload, ex=RESULT_TTL)
        pipe.incr(KEY.format(token=token, part="done"))
        pipe.execute()
        done += 1
    return done


def pool_score_distributed(
    *,
    model: MLModel,
    pool: Any,
    queryset: QuerySet[Compound],
    with_members: bool = False,
    with_fingerprints: bool = True,
    helpers: int = 1,
    chunk_ids: int | None = None,
    progress: ProgressFn | None = None,
) -> model_services.PoolScores:
    """Score `queryset` (the pool of `pool` for `model`) in chunks shared with `helpers` workers."""
    chunk_ids = chunk_ids or CHUNK_IDS
    bounds = queryset.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return model_services.model_score_compounds(model=model, compound_ids=[])
    ranges = [(a, min(a + chunk_ids, bounds["hi"] + 1)) for a in range(bounds["lo"], bounds["hi"] + 1, chunk_ids)]
    token = uuid.uuid4().hex
    r = _redis()
    plan = {
        "model_id": model.pk,
        "pool": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(pool).items()},
        "with_members": with_members,
        "with_fingerprints": with_fingerprints,
    }
    keys = [KEY.format(token=token, part=p) for p in ("plan", "todo", "taken", "done")]
    pipe = r.pipeline()
    pipe.set(keys[0], json.dumps(plan), ex=RESULT_TTL)
    pipe.rpush(keys[1], *[json.dumps(x) for x in ranges])
    pipe.expire(keys[1], RESULT_TTL)
    pipe.set(keys[3], 0, ex=RESULT_TTL)
    pipe.execute()
    if helpers > 0:
        import django_rq

        from cycles import jobs

        queue = django_rq.get_queue("default")
        for _ in range(min(helpers, len(ranges) - 1)):
            queue.enqueue(jobs.score_chunks, token, job_timeout=settings.RQ_QUEUES["default"].get("DEFAULT_TIMEOUT", 3600))
    try:
        score_chunks(token)  # the coordinator works too
        _wait_for(r, token, ranges, progress)
        parts = []
        for lo, _hi in ranges:
            data = r.get(KEY.format(token=token, part=f"result:{lo}"))
            parts.append(dict(np.load(io.BytesIO(data))))
    finally:
        r.delete(*keys, *[KEY.format(token=token, part=f"result:{lo}") for lo, _ in ranges])
    return _merge(parts)


def _wait_for(r: Any, token: str, ranges: list[tuple[int, int]], progress: ProgressFn | None) -> None:
    """Wait for helpers' chunks; redo here any chunk whose helper went quiet."""
    plan = json.loads(r.get(KEY.format(token=token, part="plan")))
    last_change, last_done = time.monotonic(), -1
    while True:
        missing = [(lo, hi) for lo, hi in ranges if not r.exists(KEY.format(token=token, part=f"result:{lo}"))]
        if not missing:
            return
        done = len(ranges) - len(missing)
        if progress:
            progress("scoring pool", int(100 * done / len(ranges)))
        if done != last_done:
            last_change, last_done = time.monotonic(), done
        elif time.monotonic() - last_change > STALL_SECONDS:
            logger.warning("scoring %s: %d chunk(s) stalled; scoring them here", token, len(missing))
            for lo, hi in missing:
                r.set(KEY.format(token=token, part=f"result:{lo}"), _score_range(plan, lo, hi), ex=RESULT_TTL)
            return
        time.sleep(0.2)


def _merge(parts: list[dict[str, np.ndarray]]) -> model_services.PoolScores:
    parts = [p for p in parts if p["ids"].size]
    if not parts:
        from compounds import chemistry

        return model_services.PoolScores(
            ids=np.zeros(0, dtype=np.int64), mean=None, std=None, proba=None, member_proba=None,
            applicability=np.zeros(0, dtype=np.float32), fingerprints=np.zeros((0, chemistry.FP_BYTES), dtype=np.uint8),
        )

    def cat(key: str, axis: int = 0) -> np.ndarray | None:
        return np.concatenate([p[key] for p in parts], axis=axis) if key in parts[0] else None

    return model_services.PoolScores(
        ids=cat("ids"),
        mean=cat("mean"),
        std=cat("std"),
        proba=cat("proba"),
        member_proba=cat("member_proba", axis=1),
        applicability=cat("applicability"),
        fingerprints=cat("fingerprints"),
        members=cat("members", axis=1),
    )
