"""Pool scoring: compounds/second scoring a registered pool with a 10-member ensemble.

    python bench/score_pool.py /tmp/pool100k.smi [--chunk 50000]

Imports the pool (once) and the solubility fixture into the bench database
(chemloop_bench), trains the default 10-member model on the fixture (once),
fills the stored per-compound features (the backfill job's service, timed on its
own), then times `model_score_compounds` over the whole pool — the same call the
selection uses: stored fingerprints + stored features → chunked predictions +
applicability domain — and reports compounds/second and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import _django

# Without it, the fixture's import would run the pool's substructure-screen backfill in
# threads beside the timed scoring.
_django.jobs_to_rq()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pool", type=Path)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--model", default="Bench solubility")
    parser.add_argument(
        "--compute-prior", action="store_true",
        help="A/B only: ignore the prior's stored columns and run its boosters per chunk, as before 2026-12-02",
    )
    args = parser.parse_args()
    _django.setup()
    from django.db.models import Max

    from compounds.models import Compound, Dataset
    from compounds.services import compounds_import_path
    from config.demo import CLASS_ASSAY, FIXTURE, REGRESSION_ASSAY  # noqa: F401
    from mlmodels import services
    from mlmodels.ml.features import DEFAULT_SPEC
    from mlmodels.models import MLModel

    dataset = f"bench pool {args.pool.name}"
    if not Dataset.objects.filter(name=dataset).exists():
        t = time.perf_counter()
        report = compounds_import_path(path=args.pool, dataset_name=dataset)
        print(f"imported pool: {report.imported:,} compounds in {time.perf_counter() - t:.0f} s")
    model = MLModel.objects.filter(name=args.model, status="active").first()
    if model is None:
        from compounds.services import assay_get_or_create

        assay = assay_get_or_create(name="Bench logS", units="log mol/L")
        compounds_import_path(path=FIXTURE, dataset_name="bench solubility", assay=assay, value_column="logS")
        t = time.perf_counter()
        model = services.model_create_initial(assay=assay, name=args.model)
        print(f"trained {model} ({model.n_members} members) in {time.perf_counter() - t:.1f} s")

    pool = Compound.objects.filter(datasets__name=dataset)
    n = pool.count()
    hi = pool.aggregate(hi=Max("id"))["hi"]
    t = time.perf_counter()
    done = services.compound_features_backfill_range(spec=DEFAULT_SPEC, id_from=0, id_to=hi + 1)
    backfill = time.perf_counter() - t
    if done:
        print(f"stored features ({DEFAULT_SPEC.name}) for {done:,} compounds in {backfill:.1f} s "
              f"→ {1e6 * backfill / done:.0f} µs/molecule (single process; the job splits it over workers)")

    if args.compute_prior:
        services._prior_read = lambda ensemble, spec: None
    rss_before = rss_mb()
    t = time.perf_counter()
    scores = services.model_score_compounds(model=model, queryset=pool, chunk_size=args.chunk, with_fingerprints=False)
    elapsed = time.perf_counter() - t
    assert scores.ids.size == n
    how = "prior computed" if args.compute_prior else "prior's stored columns"
    print(f"scored {n:,} compounds with {model} ({model.n_members} members, {DEFAULT_SPEC.name}, {how}) in {elapsed:.1f} s "
          f"→ {n / elapsed:,.0f} compounds/s; 1,000,000 would take {1e6 / (n / elapsed):.0f} s at this rate")
    print(f"peak RSS {rss_mb():.0f} MB (before scoring {rss_before:.0f} MB), chunk {args.chunk:,}")


if __name__ == "__main__":
    main()
