"""Framework-free chemistry: parsing, standardisation, properties, fingerprints, depiction.

No Django import here: the same functions run in a web request, an RQ worker, a
benchmark and a unit test without a database.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from html import escape
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from rdkit import Chem, DataStructs, RDLogger, rdBase
from rdkit.Chem import rdDepictor, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Chem.MolStandardize import rdMolStandardize

# RDKit writes parse errors to stderr; we report them per row instead.
RDLogger.DisableLog("rdApp.*")

FP_RADIUS = 2
FP_BITS = 2048
FP_BYTES = FP_BITS // 8
MAX_SMILES_LENGTH = 5000
# A registry of small molecules: anything bigger is almost surely a mistake, and
# standardisation/InChI on huge graphs is slow enough to stall an import.
MAX_HEAVY_ATOMS = 500

_morgan = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
_fragment_chooser = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
_uncharger = rdMolStandardize.Uncharger()
_tautomer_enumerator: rdMolStandardize.TautomerEnumerator | None = None

PROPERTY_NAMES = ("mw", "clogp", "tpsa", "hbd", "hba", "rotatable_bonds", "heavy_atoms")


class ChemistryError(ValueError):
    """A structure that cannot be registered; the message says why, for the row report."""


@dataclass(frozen=True, slots=True)
class StandardizedCompound:
    smiles: str  # as submitted
    canonical_smiles: str
    inchikey: str
    # None when registered without properties (big imports defer them to a job).
    mw: float | None
    clogp: float | None
    tpsa: float | None
    hbd: int | None
    hba: int | None
    rotatable_bonds: int | None
    heavy_atoms: int
    fingerprint: bytes = field(repr=False)

    def properties(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in PROPERTY_NAMES}


def parse_smiles(smiles: str) -> Chem.Mol:
    """Parse a SMILES string or raise ChemistryError naming the problem."""
    if smiles is None or not str(smiles).strip():
        raise ChemistryError("empty SMILES")
    smiles = str(smiles).strip()
    if len(smiles) > MAX_SMILES_LENGTH:
        raise ChemistryError(f"SMILES longer than {MAX_SMILES_LENGTH} characters")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ChemistryError(f"unparseable SMILES: {smiles_problem(smiles)}")
    if mol.GetNumAtoms() == 0:
        raise ChemistryError("no atoms")
    return mol


_LOG_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def smiles_problem(smiles: str) -> str:
    """RDKit's own reason a SMILES does not parse (syntax, unclosed ring, valence, aromaticity).

    Only called for a SMILES that failed: it parses again without sanitising, so a
    syntax error comes from RDKit's log and a chemistry error from the sanitisation step.
    """
    with rdBase.CaptureErrorLog() as log:
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return _parser_message(log.messages) or "syntax error"
    return _sanitize_problem(mol) or "not a valid structure"


def _parser_message(messages: str) -> str:
    lines = [_LOG_TIMESTAMP.sub("", line).strip() for line in messages.splitlines()]
    lines = [line.removeprefix("SMILES Parse Error: ") for line in lines if line]
    if not lines:
        return ""
    first = lines[0].split(" for input:", 1)[0]
    where = next((line for line in lines if line.startswith("check for mistakes around position")), "").rstrip(":")
    return f"{first} ({where})" if where else first


def _sanitize_problem(mol: Chem.Mol) -> str:
    """The first sanitisation problem of an unsanitised molecule, in words, or ""."""
    for problem in Chem.DetectChemistryProblems(mol):
        kind, message = problem.GetType(), problem.Message()
        if kind == "AtomValenceException":
            return f"valence error: {message[0].lower()}{message[1:]}"
        if kind in ("KekulizeException", "AtomKekulizeException"):
            atoms = message.replace("Can't kekulize mol.", "").strip()
            return (
                f"kekulization failed ({atoms}): an aromatic ring that cannot be written with "
                "alternating single and double bonds (often a missing [nH])"
            )
        return message
    return ""


def standardize(mol: Chem.Mol, *, canonical_tautomer: bool = False) -> Chem.Mol:
    """Keep the largest organic fragment and neutralise charges; stereo is kept.

    The canonical tautomer is optional because it is slow (~1 ms/molecule) and
    changes structures chemists may want registered as drawn.
    """
    return _standardize(mol, canonical_tautomer=canonical_tautomer, maybe_multi=True)


# Matches any atom with a nonzero formal charge. One C++ substructure search costs
# ~2 µs; the Python loop over atoms it replaces cost ~30 µs per molecule.
_CHARGED_ATOM = Chem.MolFromSmarts("[!+0]")


# Metals (everything but the non-metals, metalloids and noble gases), by atomic number.
_NON_METALS = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 33, 34, 35, 36, 51, 52, 53, 54, 85, 86})
METALS = frozenset(range(1, 119)) - _NON_METALS
# Alkali and alkaline-earth metals: as a lone ion ([Na+], [Ca+2]) they are a salt's counterion,
# dropped with the other counterions; any other metal, or one bonded to anything, is refused.
SALT_METALS = frozenset({3, 11, 19, 37, 55, 12, 20, 38, 56})
_METAL_ATOM = Chem.MolFromSmarts("[" + ",".join(f"#{n}" for n in sorted(METALS)) + "]")
_METAL_SYMBOLS = frozenset(Chem.GetPeriodicTable().GetElementSymbol(n) for n in METALS)
# A metal in a SMILES is always a bracket atom written with a capital: "[Na+]", "[Pt]".
_BRACKET_ELEMENT = re.compile(r"\[\d*([A-Z][a-z]?)")


def _may_contain_metal(mol: Chem.Mol, smiles: str | None) -> bool:
    # The SMILES text is read in ~1 µs; the 90-element SMARTS costs ~50 µs a molecule.
    if smiles is None:
        return mol.HasSubstructMatch(_METAL_ATOM)
    return any(symbol in _METAL_SYMBOLS for symbol in _BRACKET_ELEMENT.findall(smiles))
_CARBON = Chem.MolFromSmarts("[#6]")


def _refuse_metals(mol: Chem.Mol) -> None:
    """Metal complexes and organometallics have no parent the salt rules could choose:
    ferrocene's largest organic fragment is cyclopentadiene and cisplatin's is ammonia.
    A wrong parent is worse than a refusal, so they are refused (README, "Registration")."""
    for atom in mol.GetAtoms():
        number = atom.GetAtomicNum()
        if number not in METALS or (number in SALT_METALS and atom.GetDegree() == 0):
            continue
        symbol = atom.GetSymbol()
        if number in SALT_METALS:
            raise ChemistryError(
                f"{symbol} is bonded to the molecule: write a salt as separate ions "
                f"(e.g. CC(=O)[O-].[{symbol}+]) or give the parent structure"
            )
        raise ChemistryError(
            f"metal-containing structure ({symbol}): metal complexes and organometallics are not "
            "registered (only Li, Na, K, Rb, Cs, Mg, Ca, Sr and Ba as separate counterions)"
        )


def _drop_uncertain_stereo(mol: Chem.Mol) -> tuple[Chem.Mol, list[int]]:
    """Racemic (AND) and relative (OR) stereo groups say the drawn configuration is not
    the one in the bottle: those centres become undefined, so a racemate is never
    registered as the pure enantiomer drawn. Returns the molecule and the atoms changed."""
    groups = mol.GetStereoGroups()
    if not groups:
        return mol, []
    uncertain = [g for g in groups if g.GetGroupType() != Chem.StereoGroupType.STEREO_ABSOLUTE]
    if not uncertain:
        return mol, []
    rw = Chem.RWMol(mol)
    atoms = sorted({a.GetIdx() for g in uncertain for a in g.GetAtoms()})
    for idx in atoms:
        rw.GetAtomWithIdx(idx).SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    for group in uncertain:
        for bond in group.GetBonds():
            rw.GetBondWithIdx(bond.GetIdx()).SetStereo(Chem.BondStereo.STEREONONE)
    rw.SetStereoGroups([g for g in groups if g.GetGroupType() == Chem.StereoGroupType.STEREO_ABSOLUTE])
    return rw.GetMol(), atoms


def _standardize(
    mol: Chem.Mol, *, canonical_tautomer: bool, maybe_multi: bool, smiles: str | None = None
) -> Chem.Mol:
    """`smiles`: the text `mol` was parsed from, when there is one (a faster metal check)."""
    n_heavy = mol.GetNumHeavyAtoms()
    if n_heavy > MAX_HEAVY_ATOMS:
        raise ChemistryError(f"molecule too large ({n_heavy} heavy atoms > {MAX_HEAVY_ATOMS})")
    if _may_contain_metal(mol, smiles):
        _refuse_metals(mol)
    mol, _ = _drop_uncertain_stereo(mol)
    # The caller passes maybe_multi=False only when the SMILES text has no ".",
    # which guarantees a single connected component; GetMolFrags builds a tuple
    # per atom just to be counted.
    if maybe_multi and len(Chem.GetMolFrags(mol)) > 1:
        mol = _fragment_chooser.choose(mol)
    if not mol.HasSubstructMatch(_CARBON):
        # [Na+].[Cl-] would otherwise be registered as HCl and [NH4+].[Cl-] as ammonia.
        raise ChemistryError("inorganic structure (no carbon atom): not registered")
    if mol.HasSubstructMatch(_CHARGED_ATOM):
        mol = _uncharger.uncharge(mol)
        # The uncharger changes charges and hydrogen counts but keeps the old aromaticity
        # flags: the cyclopentadienyl anion came out as "c1cccc1", which RDKit cannot read
        # back. Sanitising again re-perceives them; on an ordinary molecule it changes nothing.
        problem = Chem.SanitizeMol(mol, catchErrors=True)
        if problem != Chem.SanitizeFlags.SANITIZE_NONE:
            raise ChemistryError(f"the neutralised structure is not valid ({problem.name})")
    if canonical_tautomer:
        global _tautomer_enumerator
        if _tautomer_enumerator is None:
            _tautomer_enumerator = rdMolStandardize.TautomerEnumerator()
        mol = _tautomer_enumerator.Canonicalize(mol)
    return mol


# Reverses the bit order inside a byte: RDKit's FPS hex text is little-endian per
# byte, the stored fingerprints use numpy.packbits' big-endian order.
_REVERSE_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def fingerprint_bytes(mol: Chem.Mol) -> bytes:
    """Packed Morgan fingerprint (radius 2, 2048 bits, big-endian bit order) as 256 bytes."""
    # Same bytes as np.packbits(GetFingerprintAsNumPy(mol)) without materialising
    # a 2048-byte array per molecule: hex → bytes → per-byte bit reversal, all in C.
    fps_hex = DataStructs.BitVectToFPSText(_morgan.GetFingerprint(mol))
    return bytes.fromhex(fps_hex).translate(_REVERSE_BITS)


def compute_properties(mol: Chem.Mol) -> dict[str, float | int]:
    return dict(zip(PROPERTY_NAMES, _property_values(mol), strict=True))


def _property_values(mol: Chem.Mol) -> tuple[float, float, float, int, int, int, int]:
    """The seven properties in PROPERTY_NAMES order.

    These are the C++ rdMolDescriptors calls (rdkit.Chem.Descriptors wraps some in
    slower Python). Cheaper look-alikes were tried and rejected because they give
    different numbers (bench/chemistry_profile.py counts how often):
    CalcNumLipinskiHBD/HBA (NHOHCount/NOCount) use other definitions, NonStrict
    rotatable bonds also count amide-like bonds, and Crippen without explicit
    hydrogens drops the H contributions to cLogP.
    """
    clogp, _mr = rdMolDescriptors.CalcCrippenDescriptors(mol)
    return (
        round(rdMolDescriptors._CalcMolWt(mol), 3),
        round(clogp, 3),
        round(rdMolDescriptors.CalcTPSA(mol), 2),
        rdMolDescriptors.CalcNumHBD(mol),
        rdMolDescriptors.CalcNumHBA(mol),
        rdMolDescriptors.CalcNumRotatableBonds(mol),
        mol.GetNumHeavyAtoms(),
    )


def process_smiles(
    smiles: str, *, canonical_tautomer: bool = False, with_properties: bool = True
) -> StandardizedCompound:
    """Everything a Compound row needs, from one SMILES. Raises ChemistryError.

    `with_properties=False` computes only the identity (canonical SMILES, InChIKey,
    fingerprint, heavy atoms): the six other properties are half the cost, and big
    imports fill them in a background job instead.
    """
    parsed = parse_smiles(smiles)
    submitted = str(smiles).strip()
    # A SMILES without "." is one connected component, so the fragment count can
    # be skipped; with a "." it is still counted ("C1.C1" is one molecule).
    mol = _standardize(parsed, canonical_tautomer=canonical_tautomer, maybe_multi="." in submitted, smiles=submitted)
    # Every step that rewrites a molecule returns a new one; one taken as parsed is a
    # sanitised molecule, whose SMILES RDKit reads back to the same InChIKey (checked on
    # 15,891 Enamine, solubility and salt structures), so it skips the re-read (~25 % of
    # a registration).
    return process_mol(mol, submitted=submitted, with_properties=with_properties, reread=mol is not parsed)


def process_smiles_batch(
    smiles: Sequence[str], *, canonical_tautomer: bool = False
) -> list[StandardizedCompound | ChemistryError]:
    """`process_smiles` over a list; a failure is returned in its slot, not raised.

    A repeated input (same stripped text) is computed once: imports often list the
    same structure several times, and the result depends only on that text.
    """
    done: dict[str, StandardizedCompound | ChemistryError] = {}
    out: list[StandardizedCompound | ChemistryError] = []
    for s in smiles:
        key = "" if s is None else str(s).strip()
        result = done.get(key)
        if result is None:
            try:
                result = process_smiles(key, canonical_tautomer=canonical_tautomer)
            except ChemistryError as exc:
                result = exc
            done[key] = result
        out.append(result)
    return out


_NO_PROPERTIES = (None, None, None, None, None, None)


def process_mol(
    mol: Chem.Mol, *, submitted: str, with_properties: bool = True, reread: bool = True
) -> StandardizedCompound:
    canonical = Chem.MolToSmiles(mol)
    # The registry's invariant: the stored canonical SMILES reads back, and to the stored
    # InChIKey. Taking the key from the re-read SMILES makes it hold by construction (one
    # extra parse instead of a second InChI): a row whose SMILES could not be drawn,
    # exported, fingerprinted or scored by id is never written. `reread=False` only for a
    # molecule exactly as RDKit parsed it (process_smiles).
    again = Chem.MolFromSmiles(canonical) if reread else mol
    if again is None:
        raise ChemistryError(
            f"the standardised structure {canonical!r} does not read back ({smiles_problem(canonical)}): not registered"
        )
    inchikey = Chem.MolToInchiKey(again)
    if not inchikey:
        raise ChemistryError("InChIKey could not be computed")
    props = _property_values(mol) if with_properties else (*_NO_PROPERTIES, mol.GetNumHeavyAtoms())
    # Positional construction in field order: no intermediate dict, no **kwargs.
    return StandardizedCompound(submitted, canonical, inchikey, *props, fingerprint_bytes(mol))


# --- Substructure search ---------------------------------------------------

MAX_QUERY_LENGTH = 1000
# Matching is a graph search; a query this big is a pasted molecule, not a pattern,
# and its search on a large registry could run for minutes.
MAX_QUERY_ATOMS = 100


class Perception(enum.IntEnum):
    """How much of a stored molecule a query needs perceived before it can be matched."""

    RING_MEMBERSHIP = 0  # property cache + a quick ring search: every primitive but the ones below
    SSSR = 1  # ring counts and sizes (R2, r6, k6, x3) need the smallest set of smallest rings
    FULL = 2  # hybridisation (^) needs a full sanitisation; recursive SMARTS could hold anything


# Words of RDKit's query descriptions (Atom/Bond.DescribeQuery) that need more than ring membership.
_SSSR_QUERIES = ("AtomMinRingSize", "AtomRingSize", "AtomRingBondCount")
_FULL_QUERIES = ("AtomHybridization", "RecursiveStructure")


# RDKit's pattern fingerprint, the usual substructure screen: every bit of a query's
# fingerprint is set in the fingerprint of any molecule that contains the query. It
# costs ~300 µs a molecule (more than a registration), so a background job stores it
# (services.compound_patterns_backfill_*), never the import.
PATTERN_FP_BITS = 1024
PATTERN_FP_BYTES = PATTERN_FP_BITS // 8


def pattern_fingerprint(mol: Chem.Mol) -> bytes:
    """Packed pattern fingerprint (PATTERN_FP_BYTES) of a molecule or a query molecule."""
    bits = np.zeros(PATTERN_FP_BITS, dtype=np.uint8)
    DataStructs.ConvertToNumpyArray(Chem.PatternFingerprint(mol, PATTERN_FP_BITS), bits)
    return np.packbits(bits).tobytes()


@dataclass(frozen=True)
class SubstructureQuery:
    mol: Chem.Mol = field(repr=False)
    perception: Perception
    screen: np.ndarray = field(repr=False)  # packed pattern fingerprint of the query (uint8)

    def may_match(self, pattern_fps: Sequence[bytes | None]) -> np.ndarray:
        """Which rows can contain the query (bool per row); a row without a stored
        pattern fingerprint (not yet computed) can, so it is matched in full."""
        out = np.ones(len(pattern_fps), dtype=bool)
        known = [i for i, fp in enumerate(pattern_fps) if fp is not None]
        if known and self.screen.any():
            fps = np.frombuffer(b"".join(bytes(pattern_fps[i]) for i in known), dtype=np.uint8)
            fps = fps.reshape(len(known), PATTERN_FP_BYTES)
            out[known] = ((fps & self.screen) == self.screen).all(axis=1)
        return out


def substructure_query(text: str) -> SubstructureQuery:
    """A substructure query, with SMARTS meaning; raises ChemistryError naming the problem.

    SMARTS is tried first, so "C" is an aliphatic carbon and "[nH]" an N-H. A SMILES
    that SMARTS would read differently, a Kekulé ring (C1=CC=CC=C1) or a text that is
    not SMARTS, is read as a molecule instead: aromaticity is perceived, and the
    query matches any compound that contains that molecule (hydrogens not counted).
    """
    text = (text or "").strip()
    if not text:
        raise ChemistryError("empty query")
    if len(text) > MAX_QUERY_LENGTH:
        raise ChemistryError(f"query longer than {MAX_QUERY_LENGTH} characters")
    smarts = Chem.MolFromSmarts(text)
    # "*" is "any atom" in SMARTS but an atom that matches nothing in a SMILES.
    molecule = Chem.MolFromSmiles(text) if "*" not in text else None
    if molecule is not None and molecule.GetNumAtoms() and (smarts is None or _kekule_written(smarts, molecule)):
        query = Chem.MolFromSmarts(Chem.MolToSmarts(molecule))
    elif smarts is not None and smarts.GetNumAtoms():
        query = smarts
    else:
        raise ChemistryError("not a valid SMARTS or SMILES pattern")
    if query.GetNumAtoms() > MAX_QUERY_ATOMS:
        raise ChemistryError(f"more than {MAX_QUERY_ATOMS} atoms in the query")
    screen = np.frombuffer(pattern_fingerprint(query), dtype=np.uint8)
    return SubstructureQuery(mol=query, perception=_perception(query), screen=screen)


def _kekule_written(smarts: Chem.Mol, molecule: Chem.Mol) -> bool:
    """True when a SMILES has aromatic rings its SMARTS reading would miss."""
    return any(a.GetIsAromatic() for a in molecule.GetAtoms()) and not any(
        a.GetIsAromatic() for a in smarts.GetAtoms()
    )


def _perception(query: Chem.Mol) -> Perception:
    described = " ".join(
        [a.DescribeQuery() for a in query.GetAtoms() if a.HasQuery()]
        + [b.DescribeQuery() for b in query.GetBonds() if b.HasQuery()]
    )
    if any(word in described for word in _FULL_QUERIES):
        return Perception.FULL
    # "AtomInNRings -1" is plain R (in some ring); R2 etc. count SSSR rings.
    counts_rings = "AtomInNRings" in described.replace("AtomInNRings -1 ", "")
    if counts_rings or any(word in described for word in _SSSR_QUERIES):
        return Perception.SSSR
    return Perception.RING_MEMBERSHIP


def substructure_matches(query: SubstructureQuery, canonical_smiles: Sequence[str]) -> list[int]:
    """Indices of the registered (canonical) SMILES that contain the query.

    The stored SMILES are RDKit's own aromatic output, so they need no full
    sanitisation (~170 µs for a drug-like molecule) to be matched: the property cache
    plus the ring perception the query needs (`Perception`) gives the same hits at a
    quarter to a half of the cost (checked primitive by primitive against fully
    sanitised molecules in tests/compounds/test_structure_search.py; timings in
    BENCHMARKS.md, bench/structure_search.py).
    """
    full = query.perception is Perception.FULL
    hits = []
    for i, smiles in enumerate(canonical_smiles):
        mol = Chem.MolFromSmiles(smiles, sanitize=full)
        if mol is None:
            continue
        if not full:
            mol.UpdatePropertyCache(strict=False)
            if query.perception is Perception.SSSR:
                Chem.GetSymmSSSR(mol)
            else:
                Chem.FastFindRings(mol)
        if mol.HasSubstructMatch(query.mol):
            hits.append(i)
    return hits


# --- Fingerprint arithmetic -------------------------------------------------


def fingerprints_to_matrix(fps: Sequence[bytes]) -> np.ndarray:
    """Stack packed fingerprints into a (n, FP_BYTES) uint8 matrix."""
    if len(fps) == 0:
        return np.zeros((0, FP_BYTES), dtype=np.uint8)
    return np.frombuffer(b"".join(bytes(f) for f in fps), dtype=np.uint8).reshape(-1, FP_BYTES)


def unpack_bits(packed: np.ndarray) -> np.ndarray:
    """(n, FP_BYTES) packed → (n, FP_BITS) 0/1 uint8."""
    return np.unpackbits(packed, axis=1)


def packed_to_csr(packed: np.ndarray, dtype: np.dtype | type = np.float32) -> sp.csr_matrix:
    """(n, B) packed bits → (n, 8·B) CSR matrix of ones where a bit is set.

    Same matrix as csr_matrix(unpack_bits(packed)), 5x faster: only the non-zero
    bytes (~4 % of a Morgan fingerprint's) are expanded, never all n·2048 bits.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n, n_bytes = packed.shape
    flat = packed.ravel()
    nonzero = np.flatnonzero(flat)
    byte_of, bit = np.nonzero(np.unpackbits(flat[nonzero][:, None], axis=1))
    position = nonzero[byte_of] * 8 + bit  # row-major, so already sorted by row then column
    rows = position // (8 * n_bytes)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    columns = (position - rows * (8 * n_bytes)).astype(np.int32)
    return sp.csr_matrix((np.ones(columns.size, dtype=dtype), columns, indptr), shape=(n, 8 * n_bytes))


def tanimoto(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of one packed fingerprint against every row of `matrix`."""
    return tanimoto_matrix(query.reshape(1, -1), matrix)[0]


def tanimoto_matrix(a: np.ndarray, b: np.ndarray, *, chunk: int = 2048) -> np.ndarray:
    """All-pairs Tanimoto between packed fingerprint matrices a (n, B) and b (m, B)."""
    a64 = np.ascontiguousarray(a).view(np.uint64)
    b64 = np.ascontiguousarray(b).view(np.uint64)
    count_a = np.bitwise_count(a64).sum(axis=1, dtype=np.int32)
    count_b = np.bitwise_count(b64).sum(axis=1, dtype=np.int32)
    out = np.empty((a64.shape[0], b64.shape[0]), dtype=np.float32)
    for start in range(0, a64.shape[0], chunk):
        block = a64[start : start + chunk]
        inter = np.bitwise_count(block[:, None, :] & b64[None, :, :]).sum(axis=2, dtype=np.int32)
        union = count_a[start : start + chunk, None] + count_b[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        out[start : start + chunk] = sim
    return out


def top_k_similar(
    query: np.ndarray, matrix: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """Indices and similarities of the k rows most similar to `query`, best first."""
    if matrix.shape[0] == 0 or k <= 0:
        return []
    sims = tanimoto(query, matrix)
    k = min(k, sims.shape[0])
    idx = np.argpartition(-sims, k - 1)[:k]
    idx = idx[np.lexsort((idx, -sims[idx]))]
    return [(int(i), float(sims[i])) for i in idx]


# --- Depiction --------------------------------------------------------------


def depict_svg(
    smiles: str,
    *,
    width: int = 300,
    height: int = 220,
    atom_weights: Sequence[float] | None = None,
) -> str:
    """SVG of a structure; with `atom_weights`, atoms are shaded red (+) / blue (−)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ChemistryError("unparseable SMILES")
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    opts = drawer.drawOptions()
    opts.clearBackground = False
    opts.padding = 0.08
    if atom_weights is not None:
        weights = np.asarray(atom_weights, dtype=float)
        scale = float(np.max(np.abs(weights))) or 1.0
        colours: dict[int, tuple[float, float, float]] = {}
        radii: dict[int, float] = {}
        for i, w in enumerate(weights):
            t = min(abs(w) / scale, 1.0)
            if t < 0.05:
                continue
            colours[i] = (1.0, 1.0 - 0.7 * t, 1.0 - 0.7 * t) if w > 0 else (1.0 - 0.7 * t, 1.0 - 0.5 * t, 1.0)
            radii[i] = 0.35 + 0.15 * t
        drawer.DrawMolecule(
            mol,
            highlightAtoms=list(colours),
            highlightAtomColors=colours,
            highlightAtomRadii=radii,
            highlightBonds=[],
        )
    else:
        drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    svg = drawer.GetDrawingText()
    # Drop the XML prolog so the SVG can be inlined in HTML.
    return svg.split("?>", 1)[-1].strip()


def placeholder_svg(message: str, *, width: int = 300, height: int = 220) -> str:
    """An SVG that says in words why there is no drawing (a stored SMILES that does not parse)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(message)}">'
        f'<text x="50%" y="50%" text-anchor="middle" font-size="12" fill="#a33">{escape(message)}</text></svg>'
    )


# --- Text fields ------------------------------------------------------------

# C0 and C1 control characters (NUL, line breaks, tabs, escape, DEL, …).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def single_line(text: object) -> str:
    """Text for a one-line field (a compound name or external id, an SDF title or data
    line): control characters and line breaks become spaces, runs of whitespace one space.

    A name is an identifier shown in tables, CSV cells and SDF title lines; a line break
    in it could end an SDF record early (a `$$$$` line) or fake a data field there.
    """
    # NUL goes (it cannot be stored in PostgreSQL text and never separates words).
    return " ".join(_CONTROL_CHARACTERS.sub(" ", str(text).replace("\x00", "")).split())


def _sdf_line(value: object) -> str:
    line = single_line(value)
    # A line that starts with "$$$$" ends a record for every SDF reader, whatever field it is in.
    return " " + line if line.startswith("$$$$") else line


# --- File writers -----------------------------------------------------------


def sdf_records(records: Iterable[tuple[str, dict[str, object]]]) -> Iterator[str]:
    """One SDF record (2-D coordinates, data fields) per (SMILES, fields), lazily, for a
    streamed download. A SMILES RDKit cannot read (a row stored before registration
    checked that it reads back) still gets its record, with no atoms and a
    `structure_error` field, so the download has every compound the list shows."""
    for smiles, fields in records:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            mol = Chem.Mol()
            fields = {**fields, "structure_error": f"the stored SMILES does not parse ({smiles_problem(smiles)})"}
        else:
            rdDepictor.Compute2DCoords(mol)
        # Every line we write is one line: a name with line breaks would shift the atom block
        # (title), end the field early or write a fake "$$$$" / data header (data values).
        mol.SetProp("_Name", _sdf_line(fields.get("name") or fields.get("id") or ""))
        block = [Chem.MolToMolBlock(mol)]
        for key, value in fields.items():
            text = _sdf_line(value) if value is not None else ""
            if text:
                block.append(f">  <{single_line(key)}>\n{text}\n\n")
        block.append("$$$$\n")
        yield "".join(block)


# --- File readers -----------------------------------------------------------


@dataclass(slots=True)
class InputRow:
    # CSV/TSV/SMI: the physical line in the file where the row starts (the header is line 1);
    # SDF: the record number (1 = the first record).
    row: int
    smiles: str | None
    name: str
    value: str | None
    error: str | None = None  # set when the row could not even be read
    note: str | None = None  # something the report should say about a row that is read


SMILES_COLUMN_CANDIDATES = ("smiles", "SMILES", "Smiles", "canonical_smiles", "structure")
NAME_COLUMN_CANDIDATES = ("name", "Name", "NAME", "id", "ID", "compound_id", "external_id")


def detect_format(filename: str) -> str:
    lower = filename.lower()
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".sdf", "sdf"), (".sd", "sdf"), (".smi", "smi")):
        if lower.endswith(ext) or lower.endswith(ext + ".gz"):
            return fmt
    raise ChemistryError(f"unsupported file type: {filename!r} (use .csv, .tsv, .sdf or .smi)")


def read_rows(
    stream: IO[bytes],
    fmt: str,
    *,
    smiles_column: str | None = None,
    name_column: str | None = None,
    value_column: str | None = None,
    sdf_fields: set[str] | None = None,
) -> Iterator[InputRow]:
    """Stream rows from a CSV/TSV/SMILES/SDF file without loading it whole.

    Blank lines (and CSV rows whose cells are all empty) are skipped: they are not rows.
    For SDF, `sdf_fields` collects the data field names seen in any record, so the
    caller can tell a value field that no record has from one that some records lack.
    """
    if fmt in ("csv", "tsv"):
        yield from _read_delimited(stream, fmt, smiles_column, name_column, value_column)
    elif fmt == "smi":
        yield from _read_smi(stream)
    elif fmt == "sdf":
        yield from _read_sdf(stream, name_column, value_column, set() if sdf_fields is None else sdf_fields)
    else:
        raise ChemistryError(f"unsupported format {fmt!r}")


class DecodeFallbacks:
    """How many bytes of an import were not UTF-8 and were read as Windows-1252 instead."""

    def __init__(self) -> None:
        self.count = 0


# Set by the importer around reading a file; the codec error handler counts into it.
DECODE_FALLBACKS: ContextVar[DecodeFallbacks | None] = ContextVar("chemloop_decode_fallbacks", default=None)


def _windows_1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    # Spreadsheets on Windows save CSV as Windows-1252 (a superset of Latin-1's letters):
    # reading those bytes as such keeps "äther" and "µM" instead of "�ther". The five
    # bytes Windows-1252 leaves undefined still become U+FFFD.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    counter = DECODE_FALLBACKS.get()
    if counter is not None:
        counter.count += exc.end - exc.start
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error("chemloop-windows-1252", _windows_1252_fallback)


@contextmanager
def counting_decode_fallbacks() -> Iterator[DecodeFallbacks]:
    """Count, while the block runs, the bytes read as Windows-1252 because they were not UTF-8."""
    counter = DecodeFallbacks()
    token = DECODE_FALLBACKS.set(counter)
    try:
        yield counter
    finally:
        DECODE_FALLBACKS.reset(token)


class _Prefixed(io.RawIOBase):
    """A byte stream with its first bytes put back (read to look for a byte order mark)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    # A UTF-16 byte order mark (Excel's "Unicode text", some Windows tools) means UTF-16;
    # otherwise utf-8-sig strips a UTF-8 BOM, and bytes that are not UTF-8 are read as
    # Windows-1252, so one bad row cannot abort the file and legacy exports keep their
    # accented names.
    head = stream.read(2)
    buffered = io.BufferedReader(_Prefixed(head, stream))
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return io.TextIOWrapper(buffered, encoding="utf-16", newline="")
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="chemloop-windows-1252", newline="")


def _pick(columns: Iterable[str], wanted: str | None, candidates: Sequence[str], what: str) -> str | None:
    cols = list(columns)
    if wanted:
        if wanted not in cols:
            raise ChemistryError(f"{what} column {wanted!r} not found; columns are {', '.join(cols)}")
        return wanted
    lowered = {c.lower(): c for c in cols}
    for c in candidates:
        if c in cols:
            return c
        if c.lower() in lowered:
            return lowered[c.lower()]
    return None


def _delimiter(fmt: str, header_line: str) -> str:
    """Tab for TSV; for CSV a comma, unless the header has none and has semicolons or tabs
    (a spreadsheet saved with a decimal-comma locale writes "smiles;name;pIC50")."""
    if fmt == "tsv":
        return "\t"
    if "," in header_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in header_line:
            return candidate
    return ","


def _read_delimited(
    stream: IO[bytes], fmt: str, smiles_column: str | None, name_column: str | None, value_column: str | None
) -> Iterator[InputRow]:
    text = _text(stream)
    first_line = text.readline()
    if not first_line:
        raise ChemistryError("the file is empty")
    delimiter = _delimiter(fmt, first_line)
    reader = csv.reader(itertools.chain([first_line], text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ChemistryError("the file is empty") from None
    except csv.Error as exc:
        raise ChemistryError(f"line 1 (the header): {_csv_problem(exc)}") from None
    header = [h.strip() for h in header]
    s_col = _pick(header, smiles_column, SMILES_COLUMN_CANDIDATES, "SMILES")
    if s_col is None:
        raise ChemistryError(f"no SMILES column found; columns are {', '.join(header)}")
    n_col = _pick(header, name_column, NAME_COLUMN_CANDIDATES, "name")
    v_col = _pick(header, value_column, (), "value") if value_column else None
    s_i = header.index(s_col)
    n_i = header.index(n_col) if n_col else None
    v_i = header.index(v_col) if v_col else None
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ChemistryError(f"row at line {start}: {_csv_problem(exc)}") from None
        if not fields or all(not f.strip() for f in fields):
            continue
        note = None
        if reader.line_num > start and any("\n" in f or "\r" in f for f in fields):
            note = (
                f"a quoted cell runs from line {start} to line {reader.line_num} (stored on one line); "
                "if the rows after it are missing, a closing quote is missing"
            )
        if len(fields) <= s_i:
            yield InputRow(row=start, smiles=None, name="", value=None, error="missing SMILES field", note=note)
            continue
        yield InputRow(
            row=start,
            smiles=fields[s_i].strip(),
            name=single_line(fields[n_i] if n_i is not None and n_i < len(fields) else "")[:200],
            value=(fields[v_i].strip() if v_i is not None and v_i < len(fields) else None),
            note=note,
        )


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell is longer than {csv.field_size_limit():,} characters "
            "(is a quote never closed, so that the rest of the file became one cell?)"
        )
    return f"not readable as CSV ({exc})"


def _read_smi(stream: IO[bytes]) -> Iterator[InputRow]:
    for i, line in enumerate(_text(stream), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if i == 1 and parts[0].lower() == "smiles":
            continue  # a header line
        yield InputRow(row=i, smiles=parts[0], name=single_line(parts[1] if len(parts) > 1 else "")[:200], value=None)


def _sdf_blocks(stream: IO[bytes]) -> Iterator[str]:
    """The text of each SDF record (without its $$$$ line); a last record without one counts."""
    lines: list[str] = []
    for line in _text(stream):
        if line.startswith("$$$$"):
            yield "".join(lines)
            lines = []
        else:
            lines.append(line)
    if any(line.strip() for line in lines):
        yield "".join(lines)


_SDF_FIELD = re.compile(r"^>.*?<([^>\r\n]+)>", re.MULTILINE)
_RDKIT_NOISE = ("moving to the beginning of the next molecule", "Could not sanitize molecule ending on line")


def _rdkit_reason(messages: str) -> str:
    for line in messages.splitlines():
        line = _LOG_TIMESTAMP.sub("", line).strip().removeprefix("ERROR: ")
        if line and not any(noise in line for noise in _RDKIT_NOISE):
            return line
    return ""


def _read_sdf(
    stream: IO[bytes], name_column: str | None, value_column: str | None, fields_seen: set[str]
) -> Iterator[InputRow]:
    """SDF records become SMILES rows; a broken block is reported (its number, title and
    RDKit's reason) and the next one read."""
    supplier = Chem.SDMolSupplier()
    for i, block in enumerate(_sdf_blocks(stream), start=1):
        fields_seen.update(f.strip() for f in _SDF_FIELD.findall(block))
        title = single_line(block.split("\n", 1)[0])[:200]
        label = f"SDF record {i}" + (f" ({title!r})" if title else "")
        with rdBase.CaptureErrorLog() as log:
            supplier.SetData(block, sanitize=True, removeHs=True)
            mol = supplier[0] if len(supplier) else None
        if mol is None:
            reason = _rdkit_reason(log.messages) or "not a molfile"
            yield InputRow(row=i, smiles=None, name=title, value=None, error=f"unreadable {label}: {reason}")
            continue
        if mol.GetNumAtoms() == 0:
            yield InputRow(row=i, smiles=None, name=title, value=None, error=f"{label} has no atoms")
            continue
        name = mol.GetProp(name_column) if name_column and mol.HasProp(name_column) else (
            mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        )
        value = mol.GetProp(value_column) if value_column and mol.HasProp(value_column) else None
        mol, undefined = _drop_uncertain_stereo(mol)
        note = (
            f"racemic or relative stereo (an AND/OR stereo group) at atom(s) {', '.join(str(a + 1) for a in undefined)}: "
            "registered with those stereocentres undefined, not as the enantiomer drawn"
            if undefined else None
        )
        try:
            smiles = Chem.MolToSmiles(mol)
        except Exception as exc:  # noqa: BLE001 - RDKit raises several exception types here
            yield InputRow(row=i, smiles=None, name=title, value=None, error=f"unreadable {label}: {exc}")
            continue
        yield InputRow(row=i, smiles=smiles, name=single_line(name)[:200], value=value, note=note)


def csv_safe(value: object) -> str:
    """Neutralise spreadsheet formula injection in exported cells."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
