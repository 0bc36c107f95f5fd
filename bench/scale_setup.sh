#!/usr/bin/env bash
# The bench database for the scale suite (bench/scale_suite.py), from nothing, as one script.
#
#     bash bench/scale_setup.sh            # from the project root; ≈ 25–45 min on 2 cores
#     POOL_SIZE=20000 DATABASE_URL=postgres://postgres@127.0.0.1:5432/chemloop_try bash bench/scale_setup.sh
#                                          # a dry run of the steps on a small pool and another database
#
# What it builds (the set-up every scale section of BENCHMARKS.md names):
#   /tmp/pool1m.smi and /tmp/pool100k.smi   make_pool.py, seed 0 (Enamine10k fragments recombined)
#   chemloop_bench                          dropped and created again, migrated
#   the 1M pool imported                    --properties deferred --enrich skip, as a bulk load would be
#   the substructure screens                the import's queued jobs, run by two `rqworker --burst`
#   stored features + prior columns         real ones for the first 20,000 pool compounds, then tiled
#                                           onto the rest (feature_backfill.py --tile: scoring time does
#                                           not depend on the values, and computing 1M descriptor rows
#                                           would take hours)
#   VACUUM ANALYZE                          without fresh statistics the planner picks nested loops
#
# Jobs go to Redis database 9 (the bench scripts' default), never into a timed process.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chemloop_bench}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/9}
PY=.venv/bin/python
DB=${DATABASE_URL##*/}
step() { echo "$(date -u +%H:%M:%S) $*"; }

step "pool files"
$PY bench/make_pool.py "${POOL_SIZE:-1000000}" /tmp/pool1m.smi --seed 0
head -100000 /tmp/pool1m.smi > /tmp/pool100k.smi

step "database $DB"
psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
$PY manage.py migrate -v0
$PY manage.py shell -c "import django_rq; django_rq.get_queue('default').empty()"

step "import (≈ 5–11 min)"
$PY manage.py import_compounds /tmp/pool1m.smi --dataset "bench pool pool1m.smi" --properties deferred --enrich skip \
    | tail -n 3

step "features and prior columns of the first 20,000 pool compounds (trains the prior's boosters once per machine)"
# The import also queued feature jobs over the whole pool: the tiling below replaces them.
$PY manage.py shell -c "
import django_rq
django_rq.get_queue('default').empty()
from compounds.models import Compound
from compounds.services import compound_patterns_backfill_enqueue
from mlmodels.ml.features import DEFAULT_SPEC
from mlmodels.services import compound_features_backfill_range
lo = Compound.objects.order_by('id').values_list('id', flat=True).first()
print('stored features for', compound_features_backfill_range(spec=DEFAULT_SPEC, id_from=lo, id_to=lo + 20000))
print('substructure-screen jobs queued:', compound_patterns_backfill_enqueue())
"

step "substructure screens by two RQ workers"
for _ in 1 2; do $PY manage.py rqworker default --burst >/dev/null 2>&1 & done
wait

step "tile the stored vectors onto the rest"
$PY bench/feature_backfill.py --tile
psql -h 127.0.0.1 -U postgres -d "$DB" -q -c "VACUUM ANALYZE"
step "done: cd bench && ../.venv/bin/python scale_suite.py"
