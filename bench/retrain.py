"""Retrain time: the real retrain job body on a lineage with ~5,000 labels.

    python bench/retrain.py [--labels 5000] [--members 10]

Uses the Enamine10k docking scores (../shared/data, not copied) as real labels:
version 1 is trained on `labels` compounds with a 500-compound validation set,
then a cycle selects and labels 10 more and `cycle_retrain_trigger(inline=True)`
runs the retrain job body (features, 10-member fit, validation metrics, artifact,
activation, re-scoring) in this process; the job time is printed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import time
from pathlib import Path

import _django

DATA = Path(os.environ.get("CHEMLOOP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--members", type=int, default=10)
    args = parser.parse_args()
    _django.setup()
    from django.contrib.auth.models import Group, User

    from compounds.models import Compound, Measurement
    from compounds.services import assay_get_or_create, compounds_import
    from cycles.services import cycle_retrain_trigger, cycle_select
    from labeling.models import LabelQueueItem
    from labeling.services import label_submit
    from mlmodels.services import model_create_initial

    with gzip.open(DATA / "Enamine10k_scores.csv.gz", "rt") as fh:
        rows = list(csv.DictReader(fh))
    truth = assay_get_or_create(name="Enamine10k docking (truth)")
    if not Measurement.objects.filter(assay=truth).exists():
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["smiles", "score"])
        w.writerows((r["smiles"], r["score"]) for r in rows)
        compounds_import(stream=io.BytesIO(buf.getvalue().encode()), filename="e.csv", dataset_name="enamine10k",
                         assay=truth, value_column="score", properties="deferred", enqueue_enrichment=False)
    values = dict(Measurement.objects.filter(assay=truth).values_list("compound_id", "value"))
    ids = sorted(values)
    stamp = time.strftime("%H%M%S")
    assay = assay_get_or_create(name=f"bench retrain {stamp}")
    assay.direction = "minimize"
    assay.save()
    train, validation = ids[: args.labels], ids[args.labels : args.labels + 500]
    Measurement.objects.bulk_create([Measurement(compound_id=c, assay=assay, value=values[c]) for c in train + validation])
    t = time.perf_counter()
    model = model_create_initial(assay=assay, name=assay.name, validation_compound_ids=validation, n_members=args.members)
    print(f"v1: {model.training_size:,} labels, {args.members} members, trained in {time.perf_counter() - t:.1f} s "
          f"(incl. first-time stored features); validation RMSE {model.metrics.get('rmse'):.3f}")

    lead, _ = User.objects.get_or_create(username="bench-lead")
    lead.groups.add(Group.objects.get_or_create(name="lead")[0])
    pool = Compound.objects.filter(id__in=ids[args.labels + 500 :])
    from cycles.services.selection import PoolSpec

    cycle = cycle_select(model=model, user=lead, strategy="uncertainty", batch_size=10,
                         pool=PoolSpec(kind="compounds", compound_ids=tuple(pool.values_list("id", flat=True)))).cycle
    for item_id, cid in LabelQueueItem.objects.filter(cycle=cycle).values_list("id", "compound_id"):
        label_submit(item_id=item_id, user=lead, value=values[cid])
    t = time.perf_counter()
    job = cycle_retrain_trigger(cycle_id=cycle.pk, user=lead, min_new_labels=10, inline=True)
    elapsed = time.perf_counter() - t
    job.refresh_from_db()
    print(f"retrain job ({job.status}): {job.result.get('version') and 'v' + str(job.result['version'])} on "
          f"{model.training_size + 10:,} labels with {args.members} members in {elapsed:.1f} s "
          f"(features, fit, validation metrics, artifact, activation, re-scoring)")


if __name__ == "__main__":
    main()
