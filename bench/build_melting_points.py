"""Rebuild mlmodels/ml/data/melting_points.csv.gz, the training data of the melting-point prior.

    pip download --no-deps chemicals==1.5.2 -d /tmp/chemicals-wheel
    .venv/bin/python bench/build_melting_points.py /tmp/chemicals-wheel/chemicals-1.5.2-py3-none-any.whl

Source: the Jean-Claude Bradley Open Melting Point Dataset (CC0), as shipped in the
`chemicals` package (MIT) as "Phase Change/OpenNotebook Melting Points.tsv" (CAS → Tm in
kelvin). Structures come from the same wheel's PubChem identifier tables (CAS → SMILES).
`chemicals` is only needed here, not at run time.

Kept: one row per connectivity (InChIKey first block; stereo and isotope variants merged
by their median Tm), single-component structures that registration accepts, at least 3
heavy atoms. Left out on purpose: every compound of ../shared/data/solubility.csv (by
connectivity), so the solubility benchmark and the demo's validation set measure what the
prior gives compounds it never saw, as a project's own new compounds are.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import statistics
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rdkit import Chem, RDLogger  # noqa: E402

from compounds.chemistry import ChemistryError  # noqa: E402
from mlmodels.ml.features import mols_from_smiles  # noqa: E402
from mlmodels.ml.physchem import DATA_PATH  # noqa: E402

MELTING_POINTS = "chemicals/Phase Change/OpenNotebook Melting Points.tsv"
IDENTIFIERS = (
    "chemicals/Identifiers/chemical identifiers pubchem large.tsv",
    "chemicals/Identifiers/chemical identifiers pubchem small.tsv",
)


def _connectivity(mol: Chem.Mol) -> str:
    return Chem.MolToInchiKey(mol).split("-")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="chemicals-1.5.2-py3-none-any.whl")
    parser.add_argument("--solubility", type=Path, default=ROOT.parent / "shared" / "data" / "solubility.csv")
    parser.add_argument("--out", type=Path, default=DATA_PATH)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")

    with zipfile.ZipFile(args.wheel) as wheel:
        with wheel.open(MELTING_POINTS) as fh:
            tm = {r["CAS"]: float(r["Tm"]) for r in csv.DictReader(io.TextIOWrapper(fh, "utf-8"), delimiter="\t")}
        cas_smiles: dict[str, str] = {}
        for name in IDENTIFIERS:
            with wheel.open(name) as fh:
                for line in io.TextIOWrapper(fh, "utf-8"):
                    parts = line.split("\t")
                    if len(parts) > 4 and parts[1] in tm:
                        cas_smiles.setdefault(parts[1], parts[4])

    with args.solubility.open(encoding="utf-8", newline="") as fh:
        excluded = {
            _connectivity(m) for m in (Chem.MolFromSmiles(r["smiles"]) for r in csv.DictReader(fh)) if m is not None
        }

    groups: dict[str, list[tuple[str, float]]] = {}
    counts = {"no structure": len(tm) - len(cas_smiles), "in solubility.csv": 0, "refused": 0}
    for cas, smiles in cas_smiles.items():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or "." in smiles:
            counts["refused"] += 1
            continue
        key = _connectivity(mol)
        if key in excluded:
            counts["in solubility.csv"] += 1
            continue
        try:
            std = mols_from_smiles([smiles])[0]
        except ChemistryError:
            counts["refused"] += 1
            continue
        if std.GetNumHeavyAtoms() < 3:
            counts["refused"] += 1
            continue
        groups.setdefault(key, []).append((Chem.MolToSmiles(std), tm[cas]))

    rows = sorted((v[0][0], statistics.median(t for _, t in v)) for v in groups.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["smiles", "tm_k"])
    writer.writerows((s, f"{t:.2f}") for s, t in rows)
    # mtime=0: the same input gives the same bytes.
    with gzip.GzipFile(args.out, "wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    print(f"{len(tm)} melting points, {len(rows)} kept; left out: {counts}; wrote {args.out}")


if __name__ == "__main__":
    main()
