"""Rebuild the training data of the physico-chemical prior (mlmodels.ml.physchem):
mlmodels/ml/data/melting_points.csv.gz and mlmodels/ml/data/log_p.csv.gz.

    pip download --no-deps chemicals==1.5.2 -d /tmp/chemicals-wheel
    .venv/bin/python bench/build_prior_data.py /tmp/chemicals-wheel/chemicals-1.5.2-py3-none-any.whl

Sources, both as shipped in the `chemicals` package (MIT):
- melting points: the Jean-Claude Bradley Open Melting Point Dataset (CC0),
  "Phase Change/OpenNotebook Melting Points.tsv" (CAS → Tm in kelvin);
- octanol/water log P: the experimental values of the KOWWIN data set (Syracuse Research
  Corp. for the US EPA's EPI Suite, SrcKowData2), "Environment/Syrres logP data.csv.gz",
  with the CRC Handbook's table ("Environment/CRC logP table.tsv") for CAS numbers it lacks.
Structures come from the same wheel's identifier tables (CAS → SMILES); a CAS number
without a structure there is dropped (about 60 % of the log P rows).
`chemicals` is only needed here, not at run time.

Kept: one row per connectivity (InChIKey first block; stereo and isotope variants merged
by their median), single-component structures that registration accepts, at least 3
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
from mlmodels.ml.physchem import DATA_PATH, LOG_P_DATA_PATH  # noqa: E402

MELTING_POINTS = "chemicals/Phase Change/OpenNotebook Melting Points.tsv"
LOG_P = "chemicals/Environment/Syrres logP data.csv.gz"
LOG_P_CRC = "chemicals/Environment/CRC logP table.tsv"
PUBCHEM = (
    "chemicals/Identifiers/chemical identifiers pubchem large.tsv",
    "chemicals/Identifiers/chemical identifiers pubchem small.tsv",
)
# Only for log P: the melting-point file was built from the PubChem tables alone and stays as it is.
MORE_IDENTIFIERS = ("chemicals/Identifiers/chemical identifiers example user db.tsv",)


def connectivity(mol: Chem.Mol) -> str:
    return Chem.MolToInchiKey(mol).split("-")[0]


def read_values(wheel: zipfile.ZipFile, name: str, column: str) -> dict[str, float]:
    """CAS number → value from one of the wheel's tables."""
    with wheel.open(name) as fh:
        raw = fh.read()
    text = gzip.decompress(raw).decode("utf-8") if name.endswith(".gz") else raw.decode("utf-8")
    return {r["CAS"]: float(r[column]) for r in csv.DictReader(io.StringIO(text), delimiter="\t")}


def structures(wheel: zipfile.ZipFile, names: tuple[str, ...], wanted: dict[str, float]) -> dict[str, str]:
    """CAS number → SMILES for the wanted CAS numbers, the first identifier table that has one wins."""
    cas_smiles: dict[str, str] = {}
    for name in names:
        with wheel.open(name) as fh:
            for line in io.TextIOWrapper(fh, "utf-8"):
                parts = line.split("\t")
                if len(parts) > 4 and parts[1] in wanted:
                    cas_smiles.setdefault(parts[1], parts[4])
    return cas_smiles


def _write(
    values: dict[str, float], cas_smiles: dict[str, str], excluded: set[str], out: Path, column: str
) -> None:
    groups: dict[str, list[tuple[str, float]]] = {}
    counts = {"no structure": len(values) - len(cas_smiles), "in solubility.csv": 0, "refused": 0}
    for cas, smiles in cas_smiles.items():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or "." in smiles:
            counts["refused"] += 1
            continue
        key = connectivity(mol)
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
        groups.setdefault(key, []).append((Chem.MolToSmiles(std), values[cas]))

    rows = sorted((v[0][0], statistics.median(t for _, t in v)) for v in groups.values())
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["smiles", column])
    writer.writerows((s, f"{t:.2f}") for s, t in rows)
    # mtime=0: the same input gives the same bytes.
    with gzip.GzipFile(out, "wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    print(f"{len(values)} {column} values, {len(rows)} kept; left out: {counts}; wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="chemicals-1.5.2-py3-none-any.whl")
    parser.add_argument("--solubility", type=Path, default=ROOT.parent / "shared" / "data" / "solubility.csv")
    parser.add_argument("--melting-points", type=Path, default=DATA_PATH)
    parser.add_argument("--log-p", type=Path, default=LOG_P_DATA_PATH)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")

    with args.solubility.open(encoding="utf-8", newline="") as fh:
        excluded = {
            connectivity(m) for m in (Chem.MolFromSmiles(r["smiles"]) for r in csv.DictReader(fh)) if m is not None
        }
    with zipfile.ZipFile(args.wheel) as wheel:
        tm = read_values(wheel, MELTING_POINTS, "Tm")
        _write(tm, structures(wheel, PUBCHEM, tm), excluded, args.melting_points, "tm_k")
        log_p = read_values(wheel, LOG_P, "logP")
        for cas, value in read_values(wheel, LOG_P_CRC, "logP").items():
            log_p.setdefault(cas, value)
        _write(log_p, structures(wheel, PUBCHEM + MORE_IDENTIFIERS, log_p), excluded, args.log_p, "log_p")


if __name__ == "__main__":
    main()
