"""Import throughput: compounds/second through the real import service into PostgreSQL.

    python bench/import_throughput.py /tmp/pool100k.smi [--processes 2] [--keep]

In the same run it times the bare per-molecule chemistry (the same function the
import's workers run, same number of processes, no database) and prints the
ratio, plus peak memory of this process and of the worker processes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from itertools import islice
from pathlib import Path

import _django


def _mb(kb: int) -> float:
    return kb / 1024


WITH_PROPERTIES = False


def _bare_chunk(block: list[str | None]) -> list:  # type: ignore[type-arg]
    from compounds.services import _process_chunk

    return _process_chunk(block, True, WITH_PROPERTIES)


def bare_rate(path: Path, processes: int, chunk: int) -> tuple[int, float]:
    from compounds import chemistry
    from compounds.services import _process_chunk

    def chunks():  # type: ignore[no-untyped-def]
        with path.open("rb") as fh:
            rows = chemistry.read_rows(fh, chemistry.detect_format(path.name))
            while block := list(islice(rows, chunk)):
                yield [r.smiles for r in block]

    n = 0
    t = time.perf_counter()
    if processes == 1:
        for block in chunks():
            n += len(_process_chunk(block, True, WITH_PROPERTIES))
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            for res in pool.imap(_bare_chunk, chunks()):
                n += len(res)
    return n, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="keep the imported compounds")
    parser.add_argument("--properties", choices=["auto", "inline", "deferred"], default="auto")
    args = parser.parse_args()

    # Its own database, whatever DATABASE_URL says: the import benchmark empties the
    # compound tables (with DATABASE_URL=…/chemloop_bench it once emptied the 1M pool).
    _django.setup(db_name="chemloop_bench_import", own_database=True)
    from django.db import connection

    from compounds.models import Compound
    from compounds.services import compounds_import_path

    with connection.cursor() as cur:
        cur.execute("TRUNCATE compounds_compound, compounds_dataset RESTART IDENTITY CASCADE")

    t = time.perf_counter()
    report = compounds_import_path(
        path=args.file, dataset_name="bench import", processes=args.processes, chunk_size=args.chunk,
        properties=args.properties, enqueue_enrichment=False,
    )
    elapsed = time.perf_counter() - t
    global WITH_PROPERTIES
    WITH_PROPERTIES = not report.properties_deferred
    rows = report.total_rows
    mode = "identity now, properties deferred" if report.properties_deferred else "with properties"
    print(f"import ({mode}): {rows:,} rows, {report.created:,} new, {report.invalid:,} rejected, "
          f"{report.duplicates_in_file:,} duplicates in {elapsed:.1f} s → {rows / elapsed:,.0f} compounds/s "
          f"({args.processes} processes)")
    assert Compound.objects.count() == report.created
    peak_main = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    peak_children = _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

    n, bare = bare_rate(args.file, args.processes, args.chunk)
    print(f"bare chemistry (same function, {args.processes} processes, no database): {n:,} in {bare:.1f} s → "
          f"{n / bare:,.0f} molecules/s")
    print(f"end-to-end / bare = {(rows / elapsed) / (n / bare):.0%}")
    print(f"peak RSS: main {peak_main:.0f} MB, largest worker {peak_children:.0f} MB")
    if report.properties_deferred:
        from compounds.services import compounds_enrich_range

        ids = list(Compound.objects.order_by("id").values_list("id", flat=True)[:20_000])
        sample_hi = ids[-1]
        t = time.perf_counter()
        done = compounds_enrich_range(id_from=0, id_to=sample_hi + 1)
        enrich = time.perf_counter() - t
        print(f"deferred properties (enrichment job body, one process, first {done:,} compounds): "
              f"{1e6 * enrich / done:.0f} µs/compound → {done / enrich:,.0f}/s per worker")

    if not args.keep:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE compounds_compound, compounds_dataset RESTART IDENTITY CASCADE")


if __name__ == "__main__":
    main()
