"""Structure search speed: substructure and similarity search over a big registry.

    .venv/bin/python bench/make_pool.py 200000 /tmp/pool200k.smi --seed 0
    .venv/bin/python bench/structure_search.py /tmp/pool200k.smi

Imports the file into its own PostgreSQL database (`chemloop_bench_search`, once; the
same `import_compounds` command a lead runs) and stores the substructure screen
(pattern fingerprints) of compounds without one, timed, as the import's background
job would (`--without-screen` clears it instead, so every compound is parsed). Then
it times, best of 3:

1. the chemistry alone on the stored canonical SMILES, µs per compound, for each level of
   perception a query can need (chemistry.Perception), against a full RDKit sanitisation;
2. `compound_substructure_search` end to end (read SMILES and screens in id-ordered
   chunks, screen, parse and match what the screen lets through): a common pattern
   that stops at the 500-hit cap, a rare one that has to look at every compound, and a
   hybridisation query (which needs the full sanitisation);
3. `compound_similarity_search` (Tanimoto over the stored fingerprints, all compounds).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

# Search reads only what import stores itself; the model-feature backfill that
# follows an import (in-process without Redis) is not needed here.
os.environ.setdefault("CHEMLOOP_IMPORT_FOLLOWUPS", "")

import _django


def best_of(n: int, fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("smi", type=Path)
    parser.add_argument("--parse-sample", type=int, default=50_000)
    parser.add_argument("--without-screen", action="store_true",
                        help="clear the stored pattern fingerprints first (every compound is parsed)")
    parser.add_argument("--database", default="chemloop_bench_search",
                        help="e.g. chemloop_bench, whose 1M pool the scoring benchmarks imported")
    parser.add_argument("--dataset", default=None, help="the registry's dataset of the file (default: bench search FILE)")
    parser.add_argument("--similarity-only", action="store_true", help="time only the similarity search")
    args = parser.parse_args()
    _django.setup(args.database, own_database=True)
    from django.conf import settings
    from django.core.management import call_command
    from rdkit import Chem

    from compounds import chemistry, selectors
    from compounds.models import Compound, Dataset

    name = args.dataset or f"bench search {args.smi.name}"
    if not Dataset.objects.filter(name=name).exists():
        start = time.perf_counter()
        call_command("import_compounds", str(args.smi), "--dataset", name, "--max-issues", "0")
        print(f"imported in {time.perf_counter() - start:.0f} s")
    if args.similarity_only:
        first = Compound.objects.order_by("id").values_list("canonical_smiles", flat=True).first()
        seconds, result = best_of(3, lambda: selectors.compound_similarity_search(smiles=first, threshold=0.5))
        print(f"similarity to the first compound, Tanimoto ≥ 0.5: {len(result.compounds):,} hits, "
              f"{result.scanned:,} of {result.searchable:,} compounds, {seconds:.2f} s (best of 3)")
        return
    if args.without_screen:
        Compound.objects.update(pattern_fp=None)
    else:
        # What the import's follow-up job does in the background, here in this process.
        todo = Compound.objects.filter(pattern_fp__isnull=True).count()
        if todo:
            start = time.perf_counter()
            from compounds.services import compound_patterns_backfill_range

            compound_patterns_backfill_range(id_from=0, id_to=2**62)
            seconds = time.perf_counter() - start
            print(f"substructure screen stored for {todo:,} compounds in {seconds:.0f} s "
                  f"({seconds / todo * 1e6:.0f} µs a compound, one process)")
    n = Compound.objects.count()
    screened = Compound.objects.filter(pattern_fp__isnull=False).count()
    print(f"registry: {n:,} compounds ({screened:,} with the stored screen); parse limit {settings.CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT:,}, "
          f"hit cap {settings.CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS}\n")

    smiles = list(Compound.objects.order_by("id").values_list("canonical_smiles", flat=True)[: args.parse_sample])
    rows = [
        ("ring membership only (`[CX3](=O)[OX2H1]`: most queries)", "[CX3](=O)[OX2H1]"),
        ("SSSR (`[R2]`: ring counts and sizes)", "[R2]"),
        ("full sanitisation (`[N^3]`: hybridisation, recursive SMARTS)", "[N^3]"),
    ]
    k = len(smiles) / 1e6
    print("| chemistry, parse + perceive + match, per compound | µs |\n| --- | ---: |")
    for label, pattern in rows:
        query = chemistry.substructure_query(pattern)
        seconds, _ = best_of(3, lambda query=query: chemistry.substructure_matches(query, smiles))
        print(f"| {label} | {seconds / k:.1f} |")
    seconds, _ = best_of(3, lambda: sum(Chem.MolFromSmiles(s) is not None for s in smiles))
    print(f"| (for scale: `Chem.MolFromSmiles` alone, full sanitisation) | {seconds / k:.1f} |\n")

    print("| search (end to end, PostgreSQL) | hits | compounds looked at | complete | s |")
    print("| --- | ---: | ---: | --- | ---: |")
    cases = [
        ("substructure `c1ccccc1` (common)", lambda: selectors.compound_substructure_search(pattern="c1ccccc1")),
        ("substructure `[CX3](=O)[OX2H1]` (carboxylic acid)",
         lambda: selectors.compound_substructure_search(pattern="[CX3](=O)[OX2H1]")),
        ("substructure `C1CCC2CCCCC2C1` (decalin, rare; the screen passes most)",
         lambda: selectors.compound_substructure_search(pattern="C1CCC2CCCCC2C1")),
        ("substructure `C1CC1C#N` (cyclopropyl nitrile, rare)",
         lambda: selectors.compound_substructure_search(pattern="C1CC1C#N")),
        ("substructure `c1ccc2c(c1)oc1ccccc12` (dibenzofuran, none)",
         lambda: selectors.compound_substructure_search(pattern="c1ccc2c(c1)oc1ccccc12")),
        ("substructure `c1ccc2[nH]c(=O)ccc2c1` (quinolinone, rare)",
         lambda: selectors.compound_substructure_search(pattern="c1ccc2[nH]c(=O)ccc2c1")),
        ("substructure `[N^3]` (full sanitisation)",
         lambda: selectors.compound_substructure_search(pattern="[N^3]")),
        ("similarity to the first compound, Tanimoto ≥ 0.5",
         lambda: selectors.compound_similarity_search(smiles=smiles[0], threshold=0.5)),
    ]
    for label, fn in cases:
        seconds, result = best_of(3, fn)
        print(f"| {label} | {len(result.compounds):,} | {result.scanned:,} of {result.searchable:,} | "  # type: ignore[attr-defined]
              f"{'yes' if result.complete else 'no'} | {seconds:.2f} |", flush=True)  # type: ignore[attr-defined]
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
