"""Featurizers: how a compound becomes a row of X.

A compound row already stores its packed Morgan fingerprint (radius 2, 2048 bits,
see `compounds.chemistry.fingerprint_bytes`). Anything else a `FeatureSpec` needs is
computed ONCE per compound by `compute_stored_features` and stored by the caller as
float32 bytes, so scoring a 1M pool never re-parses a SMILES: `build_matrix` only
unpacks bits and stacks the stored vectors.

Column layout of X (also what `feature_names` returns, and what explain maps back):

    [Morgan bits or counts (n_bits)] [atom-pair counts (atom_pairs)] [descriptors]

Layout of the stored vector (a strict subset, bits excluded because they are stored
already):

    [Morgan counts (n_bits, only when morgan == "counts")] [atom-pair counts] [descriptors]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cache, lru_cache
from typing import Any, Literal

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors

from compounds.chemistry import FP_BITS, FP_BYTES, FP_RADIUS, parse_smiles, standardize, unpack_bits

MorganKind = Literal["none", "bits", "counts"]
DescriptorSet = Literal["none", "props", "fast", "full"]

# Descriptors whose cost (measured on the solubility set, µs/molecule) is out of all
# proportion to what they add to a tree model: QED alone is ~720 µs, the BCUT2D
# family needs a Gasteiger + eigenvalue pass, SPS and Ipc/AvgIpc walk the graph again.
_SLOW_DESCRIPTORS = frozenset({"qed", "SPS", "Ipc", "AvgIpc"})

# 2048 folded by whole bytes: 64 bytes = 512 bits is the smallest slice used.
_FOLDABLE_SIZES = frozenset({256, 512, 1024, 2048})

# float32 cannot hold some RDKit values (Ipc overflows); clip rather than store inf.
_F32_LIMIT = 1e30


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Featurizer settings; plain values so they serialise into an artifact and a JSONField.

    morgan: "bits" reuses the stored packed fingerprint (radius 2; n_bits 2048 or
        folded from it to 1024/512/256), "counts" computes a folded Morgan count
        vector (stored per compound).
    atom_pairs: fold size of an atom-pair count fingerprint, 0 = off.
    descriptors: "props" = the 43 C++ `rdMolDescriptors.Properties` (~0.2 ms),
        "fast" = `Descriptors.descList` minus QED/BCUT2D/SPS/Ipc (~1 ms),
        "full" = all of `Descriptors.descList` (~3 ms).
    """

    name: str = "morgan_bits"
    morgan: MorganKind = "bits"
    radius: int = FP_RADIUS
    n_bits: int = FP_BITS
    atom_pairs: int = 0
    descriptors: DescriptorSet = "none"

    def __post_init__(self) -> None:
        if self.morgan not in ("none", "bits", "counts"):
            raise ValueError(f"unknown morgan kind {self.morgan!r}")
        if self.descriptors not in ("none", "props", "fast", "full"):
            raise ValueError(f"unknown descriptor set {self.descriptors!r}")
        # Bits come from the stored fingerprint: same radius, and a size it can be
        # folded to exactly (RDKit sets bit hash % size, so OR-ing equal slices of the
        # 2048 bits gives the smaller fingerprint bit for bit).
        if self.morgan == "bits" and (self.radius != FP_RADIUS or self.n_bits not in _FOLDABLE_SIZES):
            raise ValueError(
                f"morgan='bits' uses the stored fingerprint (radius {FP_RADIUS}, {FP_BITS} bits, "
                f"or folded to {sorted(_FOLDABLE_SIZES)}); use morgan='counts' for other settings"
            )
        if self.radius < 0 or self.n_bits <= 0 or self.atom_pairs < 0:
            raise ValueError("radius, n_bits and atom_pairs must be non-negative")
        if self.morgan == "none" and self.atom_pairs == 0 and self.descriptors == "none":
            raise ValueError("a FeatureSpec must select at least one feature block")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FeatureSpec keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def uses_bits(self) -> bool:
        return self.morgan == "bits"

    @property
    def n_stored(self) -> int:
        """Length of the per-compound stored float32 vector (0 for pure-bits specs)."""
        n = self.n_bits if self.morgan == "counts" else 0
        return n + self.atom_pairs + len(descriptor_names(self.descriptors))

    @property
    def descriptor_offset(self) -> int:
        """The first descriptor column of this spec's X: after the fingerprint blocks."""
        return (self.n_bits if self.morgan != "none" else 0) + self.atom_pairs

    @property
    def n_features(self) -> int:
        return self.descriptor_offset + len(descriptor_names(self.descriptors))


# Named specs compared in bench/model_quality.py. DEFAULT_SPEC was chosen there by
# 5-fold CV on the training split (see BENCHMARKS.md, "Model quality").
SPECS: dict[str, FeatureSpec] = {
    s.name: s
    for s in (
        FeatureSpec(name="morgan_bits", morgan="bits"),
        FeatureSpec(name="morgan_counts", morgan="counts"),
        FeatureSpec(name="props", morgan="none", descriptors="props"),
        FeatureSpec(name="desc_fast", morgan="none", descriptors="fast"),
        FeatureSpec(name="desc_full", morgan="none", descriptors="full"),
        FeatureSpec(name="props+bits", morgan="bits", descriptors="props"),
        FeatureSpec(name="props+counts", morgan="counts", descriptors="props"),
        FeatureSpec(name="fast+bits", morgan="bits", descriptors="fast"),
        FeatureSpec(name="fast+bits512", morgan="bits", n_bits=512, descriptors="fast"),
        FeatureSpec(name="props+bits512", morgan="bits", n_bits=512, descriptors="props"),
        FeatureSpec(name="fast+counts", morgan="counts", descriptors="fast"),
        FeatureSpec(
            name="fast+counts1024+ap1024", morgan="counts", n_bits=1024, atom_pairs=1024, descriptors="fast"
        ),
        FeatureSpec(
            name="props+counts1024+ap1024", morgan="counts", n_bits=1024, atom_pairs=1024, descriptors="props"
        ),
    )
}
# fast descriptors + stored Morgan bits folded to 512: in CV as accurate as any
# richer set tried (full descriptors, 2048 bits, Morgan/atom-pair counts), ~1 ms per
# compound to compute, only 205 stored floats (820 bytes; the bits are stored
# already), and the bits are what lets explain.py put SHAP weights on atoms.
# Folding to 512 rather than using all 2048 bits cuts fit time ~2.5x and 1M-pool
# scoring time ~2x at no CV cost.
DEFAULT_SPEC: FeatureSpec = SPECS["fast+bits512"]
# "Find the best compounds" (mlmodels.ml.presets.HIT_FINDING): fast descriptors +
# Morgan r2 counts (2048) + atom-pair counts (2048), chosen on the Enamine10k docking
# benchmark (bench/hit_finding.py, BENCHMARKS.md "Hit finding"); 4,301 features.
SPECS["hit_finding"] = FeatureSpec(
    name="hit_finding", morgan="counts", n_bits=2048, atom_pairs=2048, descriptors="fast"
)
HIT_FINDING_SPEC: FeatureSpec = SPECS["hit_finding"]


# --- Descriptor sets ----------------------------------------------------------


@lru_cache(maxsize=1)
def _properties() -> rdMolDescriptors.Properties:
    return rdMolDescriptors.Properties()


@cache
def _descriptor_functions(which: str) -> tuple[tuple[str, Callable[[Chem.Mol], float]], ...]:
    if which == "full":
        return tuple(Descriptors.descList)
    if which == "fast":
        return tuple(
            (n, f)
            for n, f in Descriptors.descList
            if n not in _SLOW_DESCRIPTORS and not n.startswith("BCUT2D")
        )
    return ()


@cache
def descriptor_names(which: str) -> tuple[str, ...]:
    if which == "none":
        return ()
    if which == "props":
        return tuple(_properties().GetPropertyNames())
    if which in ("fast", "full"):
        return tuple(n for n, _ in _descriptor_functions(which))
    raise ValueError(f"unknown descriptor set {which!r}")


def _descriptors(mol: Chem.Mol, which: str) -> np.ndarray:
    if which == "props":
        return np.asarray(_properties().ComputeProperties(mol), dtype=np.float64)
    values = np.empty(len(_descriptor_functions(which)), dtype=np.float64)
    for i, (_name, fn) in enumerate(_descriptor_functions(which)):
        try:
            values[i] = fn(mol)
        except Exception:  # noqa: BLE001 - a failing descriptor becomes "missing", not a lost compound
            values[i] = np.nan
    return values


# --- Fingerprint generators ---------------------------------------------------


@cache
def _morgan_generator(radius: int, n_bits: int) -> rdFingerprintGenerator.FingerprintGenerator64:
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


@cache
def _atom_pair_generator(n_bits: int) -> rdFingerprintGenerator.FingerprintGenerator64:
    return rdFingerprintGenerator.GetAtomPairGenerator(fpSize=n_bits)


# --- Public API ---------------------------------------------------------------


def feature_names(spec: FeatureSpec) -> list[str]:
    """Column names of X, in order: `morgan:<bit>`, `ap:<bit>`, `desc:<name>`."""
    names: list[str] = []
    if spec.morgan != "none":
        names += [f"morgan:{i}" for i in range(spec.n_bits)]
    names += [f"ap:{i}" for i in range(spec.atom_pairs)]
    names += [f"desc:{n}" for n in descriptor_names(spec.descriptors)]
    return names


def compute_stored_features(mol: Chem.Mol, spec: FeatureSpec) -> np.ndarray:
    """Per-compound features beyond the stored packed bits, as float32 (length spec.n_stored).

    `mol` should be the standardised molecule the stored fingerprint was computed from.
    Store the result with `.tobytes()` and read it back with `stored_from_bytes`.
    """
    parts: list[np.ndarray] = []
    if spec.morgan == "counts":
        parts.append(_morgan_generator(spec.radius, spec.n_bits).GetCountFingerprintAsNumPy(mol))
    if spec.atom_pairs:
        parts.append(_atom_pair_generator(spec.atom_pairs).GetCountFingerprintAsNumPy(mol))
    if spec.descriptors != "none":
        parts.append(_descriptors(mol, spec.descriptors))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    out = np.concatenate([p.astype(np.float64, copy=False) for p in parts])
    # inf (and float32 overflow) would poison tree split finding; NaN means "missing"
    # to XGBoost and is imputed for the MLP.
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, -_F32_LIMIT, _F32_LIMIT).astype(np.float32)


def stored_from_bytes(blobs: Sequence[bytes | memoryview | None], spec: FeatureSpec) -> np.ndarray:
    """Stack stored float32 blobs into (n, spec.n_stored); a missing/short blob raises."""
    d = spec.n_stored
    if d == 0:
        return np.zeros((len(blobs), 0), dtype=np.float32)
    out = np.empty((len(blobs), d), dtype=np.float32)
    for i, blob in enumerate(blobs):
        if blob is None or len(blob) != 4 * d:
            raise ValueError(
                f"stored feature vector {i} has the wrong length for spec {spec.name!r}; recompute it"
            )
        out[i] = np.frombuffer(blob, dtype=np.float32)
    return out


def build_matrix(
    spec: FeatureSpec, packed_fps: np.ndarray | None, stored: np.ndarray | None, *, out: np.ndarray | None = None
) -> np.ndarray:
    """X (n, spec.n_features) float32 from stored packed fingerprints + stored feature vectors.

    `out`: a float32 (≥ n, n_features) C-contiguous array to write X into (its first n
    rows are returned) instead of a new one, so a pool's chunks can reuse one buffer
    rather than fault in ~143 MB of fresh pages per 50,000 rows.

    Dense float32: XGBoost's `inplace_predict` is fastest on it, and a dense matrix
    keeps 0 meaning "bit off" (in CSR XGBoost would read absent entries as missing,
    which SHAP on dense input would then disagree with). Callers chunk huge pools
    (see `ensemble.predict_pool`) so the dense block stays small.
    """
    blocks: list[np.ndarray] = []
    n: int | None = None
    if spec.uses_bits:
        if packed_fps is None:
            raise ValueError(f"spec {spec.name!r} needs the packed fingerprints")
        packed = np.ascontiguousarray(packed_fps, dtype=np.uint8)
        if packed.ndim != 2 or packed.shape[1] != FP_BYTES:
            raise ValueError(f"packed fingerprints must be (n, {FP_BYTES}) uint8, got {packed.shape}")
        blocks.append(unpack_bits(fold_packed(packed, spec.n_bits)))
        n = packed.shape[0]
    if spec.n_stored:
        if stored is None:
            raise ValueError(f"spec {spec.name!r} needs stored feature vectors ({spec.n_stored} values)")
        if stored.ndim != 2 or stored.shape[1] != spec.n_stored:
            raise ValueError(f"stored features must be (n, {spec.n_stored}), got {stored.shape}")
        if n is not None and stored.shape[0] != n:
            raise ValueError("packed fingerprints and stored features have different row counts")
        blocks.append(stored)
        n = stored.shape[0]
    if len(blocks) == 1:
        return blocks[0].astype(np.float32, copy=False)
    rows = n or 0
    if (
        out is not None
        and out.dtype == np.float32
        and out.ndim == 2
        and out.shape[0] >= rows
        and out.shape[1] == spec.n_features
        and out.flags.c_contiguous
    ):
        out = out[:rows]
    else:
        out = np.empty((rows, spec.n_features), dtype=np.float32)
    col = 0
    for b in blocks:
        out[:, col : col + b.shape[1]] = b
        col += b.shape[1]
    return out


def fold_packed(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Fold (n, 256) packed 2048-bit fingerprints to n_bits by OR-ing byte slices."""
    n_bytes = n_bits // 8
    if n_bytes == packed.shape[1]:
        return packed
    return np.bitwise_or.reduce(packed.reshape(packed.shape[0], -1, n_bytes), axis=1)


def mols_from_smiles(smiles_list: Iterable[str], *, standardise: bool = True) -> list[Chem.Mol]:
    """Parse (and by default standardise, like registration does); raises ChemistryError."""
    mols = []
    for s in smiles_list:
        mol = parse_smiles(s)
        mols.append(standardize(mol) if standardise else mol)
    return mols


def packed_fingerprints(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """(n, 256) packed Morgan bits exactly as `chemistry.fingerprint_bytes` stores them."""
    gen = _morgan_generator(FP_RADIUS, FP_BITS)
    if not mols:
        return np.zeros((0, FP_BYTES), dtype=np.uint8)
    return np.packbits(np.stack([gen.GetFingerprintAsNumPy(m).astype(np.uint8) for m in mols]), axis=1)


def featurize_mols(mols: Sequence[Chem.Mol], spec: FeatureSpec) -> np.ndarray:
    packed = packed_fingerprints(mols) if spec.uses_bits else None
    stored = (
        np.stack([compute_stored_features(m, spec) for m in mols])
        if spec.n_stored and mols
        else np.zeros((len(mols), spec.n_stored), dtype=np.float32)
    )
    return build_matrix(spec, packed, stored)


def featurize_smiles(
    smiles_list: Iterable[str], spec: FeatureSpec, *, standardise: bool = True
) -> np.ndarray:
    """X for posted SMILES / benchmarks: parse, standardise, then the same path as stored rows."""
    return featurize_mols(mols_from_smiles(smiles_list, standardise=standardise), spec)


def atom_bit_map(mol: Chem.Mol, spec: FeatureSpec) -> dict[int, list[list[int]]]:
    """X column → list of occurrences, each the atom indices of one environment that set it.

    Only fingerprint columns are mapped; descriptor columns have no atoms. A Morgan
    occurrence is the centre atom plus every atom within `radius` bonds of it; an
    atom-pair occurrence is its two atoms.
    """
    mapping: dict[int, list[list[int]]] = {}
    col = 0
    if spec.morgan != "none":
        ao = rdFingerprintGenerator.AdditionalOutput()
        ao.AllocateBitInfoMap()
        _morgan_generator(spec.radius, spec.n_bits).GetCountFingerprintAsNumPy(mol, additionalOutput=ao)
        for bit, envs in ao.GetBitInfoMap().items():
            for center, radius in envs:
                atoms = {center}
                if radius > 0:
                    for bond_idx in Chem.FindAtomEnvironmentOfRadiusN(mol, radius, center):
                        bond = mol.GetBondWithIdx(bond_idx)
                        atoms.update((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
                mapping.setdefault(col + bit, []).append(sorted(atoms))
        col += spec.n_bits
    if spec.atom_pairs:
        ao = rdFingerprintGenerator.AdditionalOutput()
        ao.AllocateBitInfoMap()
        _atom_pair_generator(spec.atom_pairs).GetCountFingerprintAsNumPy(mol, additionalOutput=ao)
        for bit, pairs in ao.GetBitInfoMap().items():
            for a, b in pairs:
                mapping.setdefault(col + bit, []).append(sorted({a, b}))
    return mapping
