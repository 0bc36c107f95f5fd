"""Write a pool of N unique, valid, drug-like SMILES for benchmarks.

    python bench/make_pool.py 1000000 /tmp/pool1m.smi [--seed 0] [--workers 2]

Building blocks are the BRICS fragments of the Enamine 10k docking set (read from
the shared data folder, never copied into the project). A product is one "core"
fragment with 1-3 attachment points, each capped with a one-attachment fragment
whose BRICS environment is allowed to bond to it. Products are joined as text
(ring-closure bonds between dot-separated pieces), so the only RDKit work per
product is one parse, two descriptor calls and one canonical SMILES write.

Output lines are ``SMILES name``; uniqueness is by canonical SMILES. The result
depends only on --seed (and the source file), not on the number of workers:
chunk i is generated from the seed (seed, i) and chunks are merged in order.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import itertools
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS, rdMolDescriptors
from tqdm import tqdm

RDLogger.DisableLog("rdApp.*")

SOURCE_FILE = "Enamine10k_scores.csv.gz"
MW_MIN, MW_MAX = 200.0, 550.0
MAX_HBD, MAX_HBA = 5, 10
MAX_CORE_ATTACHMENTS = 3
# Join bonds use ring-closure numbers %91..%9k, far above anything a fragment's own
# SMILES uses for its rings, so the two can never clash.
JOIN_BASE = 91

# BRICS label pairs that may be bonded (both directions). Label 7 (the C=C
# double-bond environment) is left out: every other BRICS link is a single bond,
# which lets the text join ignore bond orders.
_COMPATIBLE: dict[int, set[int]] = {}
for _group in BRICS.reactionDefs:
    for _a, _b, _bond in _group:
        if _bond != "-":
            continue
        _COMPATIBLE.setdefault(int(_a), set()).add(int(_b))
        _COMPATIBLE.setdefault(int(_b), set()).add(int(_a))

# A dummy atom alone in a branch, or at a chain end / before ")".
_DUMMY_BRANCH = re.compile(r"\(\[(\d+)\*\]\)")
_DUMMY = re.compile(r"\[(\d+)\*\]")


def shared_data_dir() -> Path:
    env = os.environ.get("CHEMLOOP_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


# --- Building blocks ----------------------------------------------------------


def _fragments_of(smiles: str) -> list[str]:
    """Leaf BRICS fragments of one molecule (canonical SMILES with [n*] dummies)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return []
    # BreakBRICSBonds cuts every BRICS bond at once; BRICSDecompose would also
    # enumerate all partial decompositions, ~10x slower for the same leaves.
    broken = BRICS.BreakBRICSBonds(mol)
    return Chem.MolToSmiles(broken).split(".")


@dataclass(frozen=True, slots=True)
class Template:
    """A fragment as text pieces around its attachment points.

    ``pieces[0] + join(labels[0]) + pieces[1] + ...`` re-creates the fragment with
    ring-closure numbers in place of the dummy atoms.
    """

    pieces: tuple[str, ...]
    labels: tuple[int, ...]
    mw: float  # dummies weigh 0, so product MW is the exact sum of fragment MWs


def make_template(frag_smiles: str) -> Template | None:
    mol = Chem.MolFromSmiles(frag_smiles)
    if mol is None or Chem.GetFormalCharge(mol) != 0:
        return None
    dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if not dummies or len(dummies) > MAX_CORE_ATTACHMENTS:
        return None
    if any(d.GetIsotope() not in _COMPATIBLE or d.GetDegree() != 1 for d in dummies):
        return None
    if mol.GetNumAtoms() == len(dummies):
        return None
    # Root the SMILES at a real atom so no dummy is written first: a ring-closure
    # number needs an atom before it.
    root = dummies[0].GetNeighbors()[0].GetIdx()
    text = Chem.MolToSmiles(mol, rootedAtAtom=root)
    text = _DUMMY_BRANCH.sub(r"[\1*]", text)  # "X([4*])Y" -> "X[4*]Y": closure digits may follow branches
    parts = _DUMMY.split(text)
    # split() alternates text and captured labels: t0, l0, t1, l1, ..., tn
    pieces = tuple(parts[0::2])
    labels = tuple(int(x) for x in parts[1::2])
    if len(labels) != len(dummies):
        return None
    tpl = Template(pieces, labels, rdMolDescriptors._CalcMolWt(mol))
    # Check the round trip: capping every join with a methyl must parse.
    probe = _render(tpl, JOIN_BASE) + "".join(f".C%{JOIN_BASE + k}" for k in range(len(labels)))
    if Chem.MolFromSmiles(probe) is None:
        return None
    return tpl


def _render(tpl: Template, first_join: int) -> str:
    out = [tpl.pieces[0]]
    for k, piece in enumerate(tpl.pieces[1:]):
        out.append(f"%{first_join + k}")
        out.append(piece)
    return "".join(out)


# --- Workers -----------------------------------------------------------------

_CORES: list[Template] = []
_CORE_TEXT: list[str] = []
_CAPS_BY_LABEL: dict[int, list[tuple[str, float]]] = {}


def _init_worker(cores: list[Template], caps: list[Template]) -> None:
    global _CORES, _CORE_TEXT, _CAPS_BY_LABEL
    _CORES = cores
    # Pre-render the cores with their join numbers: only the caps vary per product.
    _CORE_TEXT = [_render(c, JOIN_BASE) for c in cores]
    by_label: dict[int, list[tuple[str, float]]] = {}
    for cap in caps:
        text = cap.pieces[0] + "%{}" + cap.pieces[1]
        for partner in _COMPATIBLE[cap.labels[0]]:
            by_label.setdefault(partner, []).append((text, cap.mw))
    _CAPS_BY_LABEL = by_label


def _generate_chunk(args: tuple[int, int, int]) -> list[str]:
    """Canonical SMILES of the drug-like products from `attempts` random draws."""
    seed, index, attempts = args
    rng = np.random.default_rng([seed, index])
    core_idx = rng.integers(0, len(_CORES), size=attempts)
    # One uniform per possible attachment; scaled to each cap list's length below.
    u = rng.random((attempts, MAX_CORE_ATTACHMENTS))
    seen: set[str] = set()
    out: list[str] = []
    for n in range(attempts):
        core = _CORES[core_idx[n]]
        mw = core.mw
        caps: list[str] = []
        ok = True
        for k, label in enumerate(core.labels):
            options = _CAPS_BY_LABEL.get(label)
            if not options:
                ok = False
                break
            text, cap_mw = options[int(u[n, k] * len(options))]
            mw += cap_mw
            caps.append(text.format(JOIN_BASE + k))
        # MW is additive, so most out-of-range products are dropped before RDKit sees them.
        if not ok or not MW_MIN <= mw <= MW_MAX:
            continue
        mol = Chem.MolFromSmiles(_CORE_TEXT[core_idx[n]] + "." + ".".join(caps))
        if mol is None:
            continue
        if rdMolDescriptors.CalcNumHBD(mol) > MAX_HBD or rdMolDescriptors.CalcNumHBA(mol) > MAX_HBA:
            continue
        smi = Chem.MolToSmiles(mol)
        if "." in smi or smi in seen:
            continue
        seen.add(smi)
        out.append(smi)
    return out


def _fragment_batch(smiles: list[str]) -> list[str]:
    out: list[str] = []
    for s in smiles:
        out.extend(_fragments_of(s))
    return out


def _template_batch(frags: list[str]) -> list[Template | None]:
    return [make_template(f) for f in frags]


# --- Main -------------------------------------------------------------------


def _batched(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_building_blocks(pool: mp.pool.Pool, source: Path) -> tuple[list[Template], list[Template]]:
    with gzip.open(source, "rt", newline="") as fh:
        smiles = [row["smiles"] for row in csv.DictReader(fh)]
    frags: set[str] = set()
    for batch in pool.imap(_fragment_batch, _batched(smiles, 500)):
        frags.update(batch)
    # Sorted so the fragment index order (and thus the pool) is reproducible.
    ordered = sorted(frags)
    templates = [t for batch in pool.imap(_template_batch, _batched(ordered, 500)) for t in batch if t]
    cores = templates  # every fragment (1-3 attachments) can be a core ...
    caps = [t for t in templates if len(t.labels) == 1]  # ... caps have exactly one
    return cores, caps


def _stable_hash(smiles: str) -> bytes:
    # 8-byte digests keep the global "seen" set small for 1M molecules. A collision
    # can only drop a product (never write a duplicate), and blake2b (unlike
    # hash()) is the same in every run, so the output stays deterministic.
    return hashlib.blake2b(smiles.encode(), digest_size=8).digest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of unique molecules to write")
    parser.add_argument("out", type=Path, help="output .smi file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=4000, help="random draws per work unit")
    parser.add_argument("--prefix", default="POOL", help="name prefix (names are PREFIX-000001, ...)")
    args = parser.parse_args(argv)
    if args.n <= 0:
        parser.error("n must be positive")

    source = shared_data_dir() / SOURCE_FILE
    if not source.exists():
        parser.error(f"{source} not found (set CHEMLOOP_SHARED_DATA to the shared data folder)")

    t0 = time.perf_counter()
    ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(args.workers) as pool:
        cores, caps = load_building_blocks(pool, source)
    t_blocks = time.perf_counter() - t0
    print(
        f"{len(cores)} fragments ({len(caps)} one-attachment caps) from {source.name} in {t_blocks:.1f}s",
        file=sys.stderr,
    )

    seen: set[bytes] = set()
    written = 0
    barren = 0  # consecutive chunks that added nothing: the space is exhausted
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    # Fixed minimum width so a smaller pool is a line-for-line prefix of a bigger one (same seed).
    width = max(7, len(str(args.n)))
    with (
        ctx.Pool(args.workers, initializer=_init_worker, initargs=(cores, caps)) as pool,
        tmp.open("w") as fh,
        tqdm(total=args.n, unit="mol", unit_scale=True, smoothing=0.1, file=sys.stderr) as bar,
    ):
        jobs = ((args.seed, i, args.chunk) for i in itertools.count())
        # imap keeps chunk order, so the output does not depend on worker timing.
        for batch in pool.imap(_generate_chunk, jobs):
            lines = []
            for smi in batch:
                h = _stable_hash(smi)
                if h in seen:
                    continue
                seen.add(h)
                written += 1
                lines.append(f"{smi} {args.prefix}-{written:0{width}d}\n")
                if written == args.n:
                    break
            fh.writelines(lines)
            bar.update(len(lines))
            if written == args.n:
                break
            barren = 0 if lines else barren + 1
            if barren >= 50:
                raise SystemExit(f"only {written} unique products could be made; asked for {args.n}")
        pool.terminate()  # stop the chunks still being generated ahead of the writer
    tmp.replace(args.out)
    elapsed = time.perf_counter() - t0
    print(f"N={written} molecules -> {args.out} in {elapsed:.1f}s ({written / elapsed:,.0f} molecules/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
