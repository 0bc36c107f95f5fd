"""Writes to the compound registry: registration, bulk import, measurements."""

from __future__ import annotations

import gzip
import io
import logging
import math
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from compounds import chemistry
from compounds.models import (
    Assay,
    Compound,
    Dataset,
    DatasetMembership,
    LabelConfidence,
    LabelSource,
    Measurement,
    TaskType,
)
from config.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

# Rows per chemistry chunk / database round trip.
IMPORT_CHUNK_SIZE = 5000
# Below this many rows a process pool costs more than it saves.
PARALLEL_THRESHOLD = 4000
# Reports keep at most this many per-row issues (counts stay exact).
MAX_REPORTED_ISSUES = 100_000


# What a row issue is: a rejected row (not imported), or a note about a row that was
# imported (a duplicate, a value that was not stored, a warning about the file).
ISSUE_REJECTED = "rejected"
ISSUE_DUPLICATE = "duplicate"
ISSUE_VALUE_SKIPPED = "value_skipped"
ISSUE_NOTE = "note"


@dataclass(slots=True)
class RowIssue:
    row: int
    input: str
    reason: str
    kind: str = ISSUE_REJECTED


@dataclass
class ImportReport:
    dataset_id: int | None = None
    dataset_name: str = ""
    total_rows: int = 0
    created: int = 0
    existing: int = 0
    duplicates_in_file: int = 0
    invalid: int = 0
    measurements_created: int = 0
    # Rows whose structure was registered without a value: an empty / "NA" cell, a censored
    # value (">10"), a range or a value with units in the cell. Not rejected rows.
    values_skipped: int = 0
    # The import's new assay was not kept: not one value of the file could be read.
    assay_removed: bool = False
    issues: list[RowIssue] = field(default_factory=list)
    issues_truncated: bool = False
    # True when MW/cLogP/… are left to the background enrichment jobs.
    properties_deferred: bool = False
    # Bytes that were not UTF-8 and were read as Windows-1252 (a legacy spreadsheet export).
    non_utf8_bytes: int = 0
    # The job queue was unreachable after commit: properties, stored features and the
    # substructure screen of the new compounds wait for the next import's follow-ups.
    background_jobs_not_queued: bool = False

    @property
    def imported(self) -> int:
        """Rows that ended up in the dataset (new or already registered)."""
        return self.created + self.existing

    def add_issue(self, row: int, text: str | None, reason: str, kind: str = ISSUE_REJECTED) -> None:
        """Report a row: a rejection counts in `invalid`, a skipped value in `values_skipped`
        (duplicates are counted by the caller, which knows the structure was seen)."""
        if kind == ISSUE_REJECTED:
            self.invalid += 1
        elif kind == ISSUE_VALUE_SKIPPED:
            self.values_skipped += 1
        if len(self.issues) < MAX_REPORTED_ISSUES:
            self.issues.append(RowIssue(row=row, input=(text or "")[:200], reason=reason, kind=kind))
        else:
            self.issues_truncated = True

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["imported"] = self.imported
        return data


def _compound_from_record(rec: chemistry.StandardizedCompound, *, name: str = "") -> Compound:
    return Compound(
        # NUL cannot be stored in a PostgreSQL text column; it is never meaningful here.
        smiles=rec.smiles.replace("\x00", ""),
        canonical_smiles=rec.canonical_smiles,
        inchikey=rec.inchikey,
        # One line, whichever way it came in (API, admin, import): see chemistry.single_line.
        name=chemistry.single_line(name)[:200],
        fingerprint=rec.fingerprint,
        **rec.properties(),
    )


def compound_build(*, smiles: str, name: str = "", external_id: str = "") -> Compound:
    """An unsaved, standardised Compound for one SMILES; raises ValidationFailed naming `smiles`."""
    try:
        rec = chemistry.process_smiles(smiles)
    except chemistry.ChemistryError as exc:
        raise ValidationFailed(f"Invalid structure: {exc}", extra={"field": "smiles"}) from exc
    compound = _compound_from_record(rec, name=name)
    compound.external_id = chemistry.single_line(external_id)[:100]
    return compound


def compound_register(*, smiles: str, name: str = "", external_id: str = "") -> tuple[Compound, bool]:
    """Register one structure (or return the existing one with the same InChIKey)."""
    compound = compound_build(smiles=smiles, name=name, external_id=external_id)
    existing = Compound.objects.filter(inchikey=compound.inchikey).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            compound.save()
    except IntegrityError:
        # A concurrent registration of the same structure won the race.
        return Compound.objects.get(inchikey=compound.inchikey), False
    import_followups_on_commit()
    return compound, True


def assay_settings_check(
    *, task_type: str, classes: Any, min_value: float | None = None, max_value: float | None = None
) -> list[str]:
    """An assay's task type, classes and plausible range must agree (API, admin, import);
    raises ValidationFailed naming the field, returns the clean class names. A measurement
    of a classification assay stores an index into `classes`, so the list is what gives
    every stored value its meaning."""
    if task_type not in TaskType.values:
        raise ValidationFailed(f"task type must be one of {', '.join(TaskType.values)}", extra={"field": "task_type"})
    # Names, not numbers: a label is matched to a class by its name (a JSON number is an index).
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValidationFailed(
            "a classification assay needs two or more distinct, non-empty classes, given as a list of names",
            extra={"field": "classes"},
        )
    names = [name.strip() for name in classes]
    if task_type == TaskType.CLASSIFICATION:
        # Labels are stored as an index into this list: without classes nothing can be labeled.
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise ValidationFailed(
                "a classification assay needs two or more distinct, non-empty classes", extra={"field": "classes"}
            )
        if min_value is not None or max_value is not None:
            field = "min_value" if min_value is not None else "max_value"
            raise ValidationFailed("a classification assay has classes, not a range", extra={"field": field})
    elif names:
        raise ValidationFailed("a regression assay has no classes", extra={"field": "classes"})
    if min_value is not None and max_value is not None and not min_value < max_value:
        # The wording of the database constraint (models.Assay), which admin forms also show.
        raise ValidationFailed("The lowest plausible value must be below the highest.", extra={"field": "max_value"})
    return names


def assay_resolve(
    *,
    name: str,
    task_type: str | None = None,
    units: str = "",
    classes: list[str] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> tuple[Assay, bool]:
    """The assay with this name and whether it was created now.

    A new assay gets these settings (task type default: regression). An existing one is
    returned unchanged when it agrees with every setting given (units, classes, a range
    and the task type count as given when not empty); otherwise Conflict names each
    difference, because returning it would file the caller's values under other rules
    (an index into other classes, other units).
    """
    existing = Assay.objects.filter(name=name).first()
    if existing is None:
        kind = task_type or TaskType.REGRESSION
        names = assay_settings_check(task_type=kind, classes=classes or [], min_value=min_value, max_value=max_value)
        assay, created = Assay.objects.get_or_create(
            name=name,
            defaults={
                "task_type": kind, "units": units, "classes": names, "min_value": min_value, "max_value": max_value,
            },
        )
        if created:
            return assay, True
        existing = assay  # created by a concurrent request: compare with it like any existing one
    given = {
        "task_type": task_type or None,
        "classes": [str(c).strip() for c in classes] if classes else None,
        "units": units or None,
        "min_value": min_value,
        "max_value": max_value,
    }
    differences = {
        field: f"{field} is {getattr(existing, field)!r}, not {value!r}"
        for field, value in given.items()
        if value is not None and getattr(existing, field) != value
    }
    if differences:
        from compounds.selectors import assay_in_use

        # Admin keeps an assay's meaning (task type, classes, units) read-only once values
        # or models depend on it: only then is "edit it in admin" no way out.
        if set(differences) & {"task_type", "classes", "units"} and assay_in_use(assay=existing):
            hint = "Use its settings, or choose another name (its task type, classes and units are fixed: it has measurements or models)."
        else:
            hint = "Use its settings, or choose another name (a lead can edit the assay in admin)."
        raise Conflict(
            f"an assay named {name!r} already exists and differs: {'; '.join(differences.values())}. {hint}",
            extra={"field": next(iter(differences)), "assay": existing.pk},
        )
    return existing, False


def assay_get_or_create(
    *,
    name: str,
    task_type: str | None = None,
    units: str = "",
    classes: list[str] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Assay:
    """The assay with this name, created with these settings if it does not exist (an
    existing one that disagrees with a setting given is a Conflict: `assay_resolve`)."""
    assay, _ = assay_resolve(
        name=name, task_type=task_type, units=units, classes=classes, min_value=min_value, max_value=max_value
    )
    return assay


# Plain decimal notation only: float() would also take "1_000", "١٢" or "infinity".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# Models train on 32-bit floats (float32 max ≈ 3.4e38): a larger label would make every
# later retrain of the assay fail, so it is refused here, where the person typing it can fix it.
MAX_ABS_VALUE = 1e38
# "1,234": one to three digits, then groups of three after commas.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+", re.ASCII)


def _parse_number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValidationFailed("value is not numeric", extra={"field": "value"})
    if isinstance(raw, (int, float)):
        return float(raw)
    # U+2212 MINUS SIGN is what word processors and some instruments write: it can only mean "-".
    text = str(raw).strip().replace("\u2212", "-")
    if _THOUSANDS.fullmatch(text):
        raise ValidationFailed(
            f"value {text!r}: the comma could be a decimal comma ({text.replace(',', '.', 1)}) or a thousands "
            f"separator ({text.replace(',', '')}); write the number with a decimal point and no separators",
            extra={"field": "value"},
        )
    if "," in text and _NUMBER.fullmatch(text.replace(",", ".", 1)):
        raise ValidationFailed(
            f"value {text!r}: use a decimal point (e.g. {text.replace(',', '.', 1)}), not a comma",
            extra={"field": "value"},
        )
    if not _NUMBER.fullmatch(text):
        raise ValidationFailed("value is not numeric", extra={"field": "value"})
    return float(text)


def classes_text(classes: Iterable[str]) -> str:
    """Class names for a message, each quoted: names may themselves contain commas."""
    return ", ".join(f'"{name}"' for name in classes)


def _class_index(assay: Assay, number: int | float, shown: str) -> float:
    if isinstance(number, float) and not (math.isfinite(number) and number.is_integer()):
        raise ValidationFailed(f"class index {shown} is not a whole number", extra={"field": "value"})
    # Compared before float(): a JSON integer may be larger than any float.
    if not 0 <= number < len(assay.classes):
        raise ValidationFailed(
            f"class index {shown} is out of range (0–{len(assay.classes) - 1})", extra={"field": "value"}
        )
    return float(number)


def parse_class_value(assay: Assay, raw: Any) -> float:
    """The stored class index of a classification label (docs/api.md, "Class values").

    A number (a JSON integer, or a float with nothing after the point) is a class index;
    text is a class name. Text that names no class is read as an index only when no class
    name is itself a number: with classes ["1", "2"] the text "1" could be the class named
    "1" or the second class, and a guess would store the wrong label without a word.
    """
    if isinstance(raw, bool):
        raise ValidationFailed("value must be a class name or a class index", extra={"field": "value"})
    if isinstance(raw, (int, float)):
        return _class_index(assay, raw, f"{raw:g}" if isinstance(raw, float) else str(raw))
    text = str(raw).strip()
    if text in assay.classes:
        return float(assay.classes.index(text))
    numeric_names = any(_NUMBER.fullmatch(name.strip()) for name in assay.classes)
    if _NUMBER.fullmatch(text) and not numeric_names:
        return _class_index(assay, float(text), text)
    hint = (
        "; this assay's class names are numbers, so text is read as a class name (send a JSON number for an index)"
        if numeric_names and _NUMBER.fullmatch(text) else ""
    )
    raise ValidationFailed(
        f"value {text!r} is not one of the classes {classes_text(assay.classes)}{hint}", extra={"field": "value"}
    )


def parse_measurement_value(assay: Assay, raw: Any) -> float:
    """A label value checked against the assay; raises ValidationFailed naming the problem."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValidationFailed("value is empty", extra={"field": "value"})
    if assay.is_classification:
        return parse_class_value(assay, raw)
    number = _parse_number(raw)
    if not math.isfinite(number) or abs(number) > MAX_ABS_VALUE:
        raise ValidationFailed(
            f"value must be a finite number no larger than {MAX_ABS_VALUE:g} in magnitude", extra={"field": "value"}
        )
    low, high = assay.min_value, assay.max_value
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValidationFailed(
            f"value {number:g} is outside the plausible range of {assay.name} ({assay.range_text()}): "
            "check the units, or ask a lead to widen the assay's range",
            extra={"field": "value"},
        )
    return number


def label_provenance_check(*, source: str, confidence: str, sources: tuple[str, ...] | None = None) -> None:
    """A label's source and confidence must be known values; raises ValidationFailed naming the field."""
    allowed = sources or tuple(LabelSource.values)
    if source not in allowed:
        raise ValidationFailed(f"source must be one of {', '.join(allowed)}", extra={"field": "source"})
    if confidence and confidence not in LabelConfidence.values:
        raise ValidationFailed(
            f"confidence must be one of {', '.join(LabelConfidence.values)}", extra={"field": "confidence"}
        )


def measurement_create(
    *,
    compound: Compound,
    assay: Assay,
    value: Any,
    source: str = LabelSource.EXPERIMENTAL,
    confidence: str = "",
    notes: str = "",
    user: Any = None,
    queue_item: Any = None,
) -> Measurement:
    number = parse_measurement_value(assay, value)
    label_provenance_check(source=source, confidence=confidence)
    return Measurement.objects.create(
        compound=compound,
        assay=assay,
        value=number,
        source=source,
        confidence=confidence,
        notes=notes,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        queue_item=queue_item,
    )


# --- Bulk import ------------------------------------------------------------

# Cells that say "not measured": the compound belongs in the pool, without a value.
_NO_VALUE_MARKERS = frozenset({"na", "n/a", "n.a.", "nan", "nd", "n.d.", "not determined", "not tested", "-", "?", "none", "null"})
# What spreadsheets and pandas write for a division by zero: no measurement either.
_INFINITE_MARKERS = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "#div/0!"})
_NUM = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?"
_CENSORED = re.compile(rf"(>=|<=|=>|=<|[<>≤≥~≈])\s*{_NUM}")
_RANGE = re.compile(rf"{_NUM}\s*(?:-|–|—|to)\s*{_NUM}")
_WITH_UNITS = re.compile(rf"{_NUM}\s*[^\d\s.,+-].*")


def import_value(assay: Assay, raw: str | None) -> tuple[float | None, str]:
    """A file cell's value for `assay`, or (None, why) when the cell holds no storable
    measurement but the structure should still be registered: empty or "NA", censored
    (">10"), a range, units in the cell. A value that is simply wrong (text, a decimal
    comma, out of the assay's range) raises ValidationFailed: that row is rejected, so the
    file gets fixed rather than the compound registered with nothing said.
    """
    text = "" if raw is None else str(raw).strip()
    if assay.is_classification and text in assay.classes:
        return parse_class_value(assay, text), ""
    if text.lower() in _NO_VALUE_MARKERS or not text:
        shown = "no such cell or field" if raw is None else ("empty cell" if not text else repr(text))
        return None, f"no value ({shown}): the compound is registered without a value"
    if text.lower() in _INFINITE_MARKERS:
        return None, f"{text!r} is not a finite number: the compound is registered without a value"
    try:
        return parse_measurement_value(assay, text), ""
    except ValidationFailed:
        if assay.is_classification:
            raise
        plain = text.replace("\u2212", "-")
        if _CENSORED.fullmatch(plain):
            return None, f"censored value {text!r}: qualifiers are not stored, the compound is registered without a value"
        if _RANGE.fullmatch(plain):
            return None, f"range {text!r} is not a single value: the compound is registered without a value"
        if _WITH_UNITS.fullmatch(plain):
            return None, (
                f"value {text!r} has units in the cell: give the number only (the assay has the units); "
                "the compound is registered without a value"
            )
        raise


@dataclass
class _FileState:
    """What one import remembers across chunks: where each structure first appeared and
    how often each (structure, value) pair has been seen, so replicates are stored."""

    unit: str = "line"  # what a row number counts: a line of the file, or an SDF record
    first_row: dict[int, int] = field(default_factory=dict)  # hash(InChIKey) → first row
    occurrences: dict[tuple[int, float], int] = field(default_factory=dict)

    def occurrence(self, inchikey: str, value: float) -> int:
        key = (hash(inchikey), value)
        self.occurrences[key] = self.occurrences.get(key, 0) + 1
        return self.occurrences[key]


def _read_row(
    row: chemistry.InputRow, res: Any, inchikey: str | None, *, assay: Assay | None, expect_values: bool,
    report: ImportReport, state: _FileState,
) -> tuple[bool, float | None, int]:
    """The report's view of one row: (register it?, its value or None, the value's occurrence
    in the file). Shared by both write paths so they report alike."""
    report.total_rows += 1
    if row.note:
        report.add_issue(row.row, row.smiles, row.note, kind=ISSUE_NOTE)
    if row.error:
        report.add_issue(row.row, row.smiles, row.error)
        return False, None, 0
    if isinstance(res, str) or inchikey is None:
        report.add_issue(row.row, row.smiles, str(res))
        return False, None, 0
    value: float | None = None
    if assay is not None and expect_values:
        try:
            value, skipped = import_value(assay, row.value)
        except ValidationFailed as exc:
            report.add_issue(row.row, row.smiles, f"{exc.message} ({row.value!r})")
            return False, None, 0
        if skipped:
            report.add_issue(row.row, row.smiles, skipped, kind=ISSUE_VALUE_SKIPPED)
    occurrence = state.occurrence(inchikey, value) if value is not None else 0
    first = state.first_row.get(hash(inchikey))
    if first is not None:
        report.duplicates_in_file += 1
        report.add_issue(
            row.row, row.smiles,
            f"duplicate in file (same structure as {state.unit} {first}): registered once"
            + ("; this row's value is stored as a replicate" if value is not None else ""),
            kind=ISSUE_DUPLICATE,
        )
        return False, value, occurrence
    state.first_row[hash(inchikey)] = row.row
    return True, value, occurrence




def _process_chunk(
    smiles: list[str | None], copy_mode: bool = False, with_properties: bool = True
) -> list[chemistry.StandardizedCompound | tuple[str, str] | str]:
    """Worker-side chemistry for one chunk: per row a record (or, in COPY mode, the
    InChIKey and a ready COPY line, which is all the main process needs), or the
    reason the row failed."""
    out: list[chemistry.StandardizedCompound | tuple[str, str] | str] = []
    for s in smiles:
        if s is None:
            out.append("empty SMILES")
            continue
        try:
            rec = chemistry.process_smiles(s, with_properties=with_properties)
        except chemistry.ChemistryError as exc:
            out.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - RDKit can raise anything on hostile input
            out.append(f"could not process structure ({type(exc).__name__})")
            continue
        out.append((rec.inchikey, _copy_line(rec)) if copy_mode else rec)
    return out


def _copy_escape(text: str) -> str:
    # NUL cannot travel in COPY text (nor in a PostgreSQL text column).
    return text.replace("\x00", "").replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_value(value: float | int | None) -> str:
    return "\\N" if value is None else repr(value)


def _copy_line(rec: chemistry.StandardizedCompound) -> str:
    # Columns of the temp table after row/name/value, in COPY text format.
    return "\t".join(
        (
            _copy_escape(rec.smiles),
            _copy_escape(rec.canonical_smiles),
            rec.inchikey,
            _copy_value(rec.mw),
            _copy_value(rec.clogp),
            _copy_value(rec.tpsa),
            _copy_value(rec.hbd),
            _copy_value(rec.hba),
            _copy_value(rec.rotatable_bonds),
            str(rec.heavy_atoms),
            "\\\\x" + rec.fingerprint.hex(),
        )
    )


def _chunks(rows: Iterable[chemistry.InputRow], size: int) -> Iterator[list[chemistry.InputRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _chemistry_results(
    chunks: Iterator[list[chemistry.InputRow]], processes: int, copy_mode: bool, with_properties: bool
) -> Iterator[tuple[list[chemistry.InputRow], list[Any]]]:
    """Pair each chunk with its chemistry, in worker processes when `processes` > 1.

    The pool works ahead on the next chunks while this process writes the current
    one to the database, so the two cores stay busy.
    """
    if processes <= 1:
        for chunk in chunks:
            yield chunk, _process_chunk([r.smiles for r in chunk], copy_mode, with_properties)
        return
    # fork: the workers need only RDKit and no database connection; spawning would
    # re-import Django for every worker.
    ctx = multiprocessing.get_context("fork")
    pending: list[tuple[list[chemistry.InputRow], Any]] = []
    with ctx.Pool(processes) as pool:
        for chunk in chunks:
            pending.append(
                (chunk, pool.apply_async(_process_chunk, ([r.smiles for r in chunk], copy_mode, with_properties)))
            )
            # Bounded look-ahead keeps memory flat in file size.
            if len(pending) > processes * 2:
                head, res = pending.pop(0)
                yield head, res.get()
        for head, res in pending:
            yield head, res.get()


def compounds_import(
    *,
    stream: IO[bytes],
    filename: str,
    dataset_name: str,
    assay: Assay | None = None,
    new_assay: dict[str, Any] | None = None,
    value_column: str | None = None,
    smiles_column: str | None = None,
    name_column: str | None = None,
    user: Any = None,
    processes: int | None = None,
    chunk_size: int = IMPORT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
    use_copy: bool | None = None,
    properties: str = "auto",
    enqueue_enrichment: bool = True,
    enqueue_followups: bool | None = None,
) -> ImportReport:
    """Import a CSV/TSV/SMI/SDF file into a dataset, with a per-row report.

    Valid rows are registered (deduplicated by InChIKey: a re-import adds
    nothing), invalid rows are reported and skipped. The whole import is one
    transaction, so a failure half-way leaves nothing behind.

    `properties`: "inline" computes MW, cLogP, TPSA, HBD, HBA and rotatable bonds
    during the import; "deferred" leaves them to the chunked `compounds_enrich`
    jobs enqueued after commit (they are half of the per-molecule cost, so big
    imports stay fast); "auto" is inline for files of one chunk, deferred beyond.

    `new_assay` (keyword arguments of `assay_get_or_create`) creates the assay the values
    go to inside the import's transaction, so an import that fails creates no assay.

    `enqueue_enrichment` queues the deferred properties' jobs after commit;
    `enqueue_followups` (default: the same) the CHEMLOOP_IMPORT_FOLLOWUPS of new compounds
    (stored features, substructure screen). The command computes properties itself but
    still queues the follow-ups.
    """
    try:
        fmt = chemistry.detect_format(filename)
    except chemistry.ChemistryError as exc:
        raise ValidationFailed(str(exc), extra={"field": "file"}) from exc
    if filename.lower().endswith(".gz"):
        # Uploads, the API and the command alike: decompressed as it is read, never whole.
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    if value_column and assay is None and not new_assay:
        raise ValidationFailed("a value column needs an assay", extra={"field": "assay"})
    if not dataset_name.strip():
        raise ValidationFailed("dataset name is required", extra={"field": "dataset"})
    if processes is None:
        processes = min(2, os.cpu_count() or 1)

    report = ImportReport(dataset_name=dataset_name)
    with chemistry.counting_decode_fallbacks() as fallbacks:
        return _import_rows(
            stream, fmt, report, fallbacks, assay=assay, new_assay=new_assay, value_column=value_column,
            smiles_column=smiles_column, name_column=name_column, user=user, processes=processes,
            chunk_size=chunk_size, progress=progress, use_copy=use_copy, properties=properties,
            enqueue_enrichment=enqueue_enrichment, dataset_name=dataset_name,
            enqueue_followups=enqueue_enrichment if enqueue_followups is None else enqueue_followups,
        )


def _import_rows(
    stream: IO[bytes],
    fmt: str,
    report: ImportReport,
    fallbacks: chemistry.DecodeFallbacks,
    *,
    dataset_name: str,
    assay: Assay | None,
    new_assay: dict[str, Any] | None,
    value_column: str | None,
    smiles_column: str | None,
    name_column: str | None,
    user: Any,
    processes: int,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    use_copy: bool | None,
    properties: str,
    enqueue_enrichment: bool,
    enqueue_followups: bool,
) -> ImportReport:
    sdf_fields: set[str] = set()
    try:
        rows = chemistry.read_rows(
            stream, fmt, smiles_column=smiles_column, name_column=name_column, value_column=value_column,
            sdf_fields=sdf_fields,
        )
        first = list(islice(rows, chunk_size))
    except chemistry.ChemistryError as exc:
        raise ValidationFailed(str(exc), extra={"field": "file"}) from exc
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ValidationFailed(f"the file could not be decompressed ({exc})", extra={"field": "file"}) from exc

    def all_chunks() -> Iterator[list[chemistry.InputRow]]:
        if first:
            yield first
        yield from _chunks(rows, chunk_size)

    if len(first) < min(chunk_size, PARALLEL_THRESHOLD):
        processes = 1
    if properties not in ("auto", "inline", "deferred"):
        raise ValidationFailed("properties must be auto, inline or deferred", extra={"field": "properties"})
    with_properties = properties == "inline" or (properties == "auto" and len(first) < chunk_size)

    state = _FileState(unit="record" if fmt == "sdf" else "line")
    expect_values = bool(value_column)
    # COPY on PostgreSQL; the portable ORM path elsewhere (SQLite for `make run`).
    copy_mode = connection.vendor == "postgresql" if use_copy is None else use_copy
    assay_created = False
    with transaction.atomic():
        if new_assay:
            assay, assay_created = assay_resolve(**new_assay)
        dataset, dataset_created = Dataset.objects.get_or_create(
            name=dataset_name.strip()[:200],
            defaults={"created_by": user if getattr(user, "is_authenticated", False) else None},
        )
        report.dataset_id = dataset.pk
        if copy_mode:
            _copy_prepare()
        try:
            for chunk, results in _chemistry_results(all_chunks(), processes, copy_mode, with_properties):
                write = _copy_chunk if copy_mode else _import_chunk
                write(
                    chunk, results, dataset=dataset, assay=assay, expect_values=expect_values, report=report,
                    state=state,
                )
                if progress:
                    progress(len(chunk))
        except chemistry.ChemistryError as exc:
            raise ValidationFailed(str(exc), extra={"field": "file"}) from exc
        except (OSError, EOFError) as exc:
            raise ValidationFailed(f"the file could not be decompressed ({exc})", extra={"field": "file"}) from exc
        if fmt == "sdf":
            _sdf_fields_check(sdf_fields, value_column=value_column, name_column=name_column)
        report.properties_deferred = not with_properties and report.created > 0
        report.non_utf8_bytes = fallbacks.count
        if dataset_created and report.imported == 0:
            # Not one row could be read: a new, empty dataset would only clutter every list.
            dataset.delete()
            report.dataset_id = None
        if assay_created and assay is not None and report.measurements_created == 0:
            # The assay was asked for to hold this file's values and none could be read:
            # an empty assay left behind would be taken for the one to fix (RELIABILITY.md).
            assay.delete()
            report.assay_removed = True
        if report.properties_deferred and enqueue_enrichment:
            transaction.on_commit(_followup(compounds_enrich_enqueue, report))
        if report.created and enqueue_followups:
            import_followups_on_commit(report)
    return report


def _sdf_fields_check(fields: set[str], *, value_column: str | None, name_column: str | None) -> None:
    """A data field that no record has is a misspelt name (PIC50 for pIC50), as a missing
    CSV column is: refused (rolling the import back), listing the fields the file has."""
    for column, what in ((value_column, "value"), (name_column, "name")):
        if not column or column in fields:
            continue
        seen = ", ".join(sorted(fields)) if fields else "none"
        near = [f for f in fields if f.lower() == column.lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValidationFailed(
            f"{what} field {column!r} is in no SDF record{hint}; the records' data fields are: {seen}",
            extra={"field": f"{what}_column"},
        )


def import_followups_on_commit(report: ImportReport | None = None) -> None:
    """Queue the CHEMLOOP_IMPORT_FOLLOWUPS (stored features, substructure screen) after the
    current transaction commits: every path that registers compounds calls this.

    Each follow-up covers every compound still missing its data, so one per transaction is
    enough: a pasted pool registering 1,000 SMILES in one transaction queues them once.
    """
    connection = transaction.get_connection()
    pending = {getattr(func, "chemloop_followup", None) for _, func, _ in connection.run_on_commit}
    for path in settings.CHEMLOOP_IMPORT_FOLLOWUPS:
        if path in pending and report is None:
            continue
        # e.g. the model features backfill: configured, so this app never imports mlmodels.
        run = _followup(import_string(path), report)
        run.chemloop_followup = path  # type: ignore[attr-defined]
        transaction.on_commit(run)


def _followup(enqueue: Callable[[], Any], report: ImportReport | None) -> Callable[[], None]:
    """An after-commit enqueue that cannot turn a committed import into an error.

    With Redis unreachable the rows are in; what is missing (properties, stored features,
    the substructure screen) is found again by the next import's follow-ups, and scoring
    computes missing features on the way. The report says so.
    """

    def run() -> None:
        try:
            enqueue()
        except Exception:  # see the docstring: the import committed
            logger.warning("import follow-up %s not queued", getattr(enqueue, "__name__", enqueue), exc_info=True)
            if report is not None:
                report.background_jobs_not_queued = True

    return run


def _import_chunk(
    chunk: list[chemistry.InputRow],
    results: list[chemistry.StandardizedCompound | str],
    *,
    dataset: Dataset,
    assay: Assay | None,
    expect_values: bool,
    report: ImportReport,
    state: _FileState,
) -> None:
    good: list[tuple[chemistry.InputRow, chemistry.StandardizedCompound]] = []
    values: list[tuple[str, float, int]] = []  # (InChIKey, value, occurrence in the file)
    for row, res in zip(chunk, results, strict=True):
        inchikey = None if isinstance(res, str) else res.inchikey
        register, value, occurrence = _read_row(
            row, res, inchikey, assay=assay, expect_values=expect_values, report=report, state=state
        )
        if register:
            good.append((row, res))
        if value is not None and inchikey is not None:
            values.append((inchikey, value, occurrence))
    if not good and not values:
        return

    keys = [rec.inchikey for _, rec in good]
    existing = dict(Compound.objects.filter(inchikey__in=keys).values_list("inchikey", "id"))
    new_objs = [_compound_from_record(rec, name=row.name) for row, rec in good if rec.inchikey not in existing]
    Compound.objects.bulk_create(new_objs, batch_size=2000, ignore_conflicts=True)
    ids = dict(Compound.objects.filter(inchikey__in=keys + [k for k, _, _ in values]).values_list("inchikey", "id"))
    report.created += len(keys) - len(existing)
    report.existing += len(existing)

    DatasetMembership.objects.bulk_create(
        [DatasetMembership(dataset=dataset, compound_id=ids[k]) for k in keys],
        batch_size=5000,
        ignore_conflicts=True,
    )
    if assay is not None and values:
        # The n-th occurrence of a (compound, value) pair in the file is stored unless the
        # assay already holds n of them: replicates in one file are all kept, and a re-import
        # of the same file adds nothing.
        stored: dict[tuple[int, float], int] = {}
        for pair in Measurement.objects.filter(assay=assay, compound_id__in=[ids[k] for k, _, _ in values]).values_list(
            "compound_id", "value"
        ):
            stored[pair] = stored.get(pair, 0) + 1
        fresh = [
            Measurement(compound_id=ids[k], assay=assay, value=v, source=LabelSource.IMPORTED)
            for k, v, occurrence in values
            if occurrence > stored.get((ids[k], v), 0)
        ]
        Measurement.objects.bulk_create(fresh, batch_size=5000)
        report.measurements_created += len(fresh)


_COPY_NULL = "\\N"
_COPY_COLUMNS = (
    "row_no", "name", "value", "dup", "occurrence", "smiles", "canonical_smiles", "inchikey", "mw", "clogp", "tpsa",
    "hbd", "hba", "rotatable_bonds", "heavy_atoms", "fingerprint",
)


def _copy_prepare() -> None:
    with connection.cursor() as cur:
        cur.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS chemloop_import (
                row_no integer, name text, value double precision, dup boolean, occurrence integer,
                smiles text, canonical_smiles text,
                inchikey varchar(27), mw double precision, clogp double precision, tpsa double precision,
                hbd smallint, hba smallint, rotatable_bonds smallint, heavy_atoms smallint, fingerprint bytea
            ) ON COMMIT DROP
            """
        )


def _copy_chunk(
    chunk: list[chemistry.InputRow],
    results: list[Any],
    *,
    dataset: Dataset,
    assay: Assay | None,
    expect_values: bool,
    report: ImportReport,
    state: _FileState,
) -> None:
    """PostgreSQL path: COPY the chunk into a temp table, then three set-based INSERTs.

    The database does the deduplication (ON CONFLICT on the InChIKey), so this
    process only streams text; the chemistry happened in the workers. A duplicate row
    of the file is in the table only for its value (`dup`).
    """
    lines: list[str] = []
    registered = 0
    for row, res in zip(chunk, results, strict=True):
        inchikey, line = (None, "") if isinstance(res, str) else res
        register, value, occurrence = _read_row(
            row, res, inchikey, assay=assay, expect_values=expect_values, report=report, state=state
        )
        registered += register
        if register or value is not None:
            lines.append(
                f"{row.row}\t{_copy_escape(row.name)}\t{_COPY_NULL if value is None else repr(value)}\t"
                f"{'f' if register else 't'}\t{occurrence}\t{line}\n"
            )
    if not lines:
        return
    with connection.cursor() as cur:
        cur.execute("TRUNCATE chemloop_import")
        cur.cursor.copy_expert(
            f"COPY chemloop_import ({', '.join(_COPY_COLUMNS)}) FROM STDIN", io.StringIO("".join(lines))
        )
        cur.execute(
            """
            INSERT INTO compounds_compound (smiles, canonical_smiles, inchikey, name, external_id, mw, clogp, tpsa,
                hbd, hba, rotatable_bonds, heavy_atoms, fingerprint, feature_set, prior_key, created_at)
            SELECT smiles, canonical_smiles, inchikey, left(name, 200), '', mw, clogp, tpsa, hbd, hba,
                rotatable_bonds, heavy_atoms, fingerprint, '', '', now()
            FROM chemloop_import WHERE NOT dup ORDER BY row_no
            ON CONFLICT (inchikey) DO NOTHING
            """
        )
        created = cur.rowcount
        report.created += created
        report.existing += registered - created
        cur.execute(
            """
            INSERT INTO compounds_datasetmembership (dataset_id, compound_id)
            SELECT %s, c.id FROM chemloop_import t JOIN compounds_compound c ON c.inchikey = t.inchikey
            WHERE NOT t.dup
            ON CONFLICT DO NOTHING
            """,
            [dataset.pk],
        )
        if assay is not None:
            cur.execute(
                """
                INSERT INTO compounds_measurement (compound_id, assay_id, value, source, confidence, notes, created_at)
                SELECT c.id, %s, t.value, 'imported', '', '', now()
                FROM chemloop_import t JOIN compounds_compound c ON c.inchikey = t.inchikey
                WHERE t.value IS NOT NULL AND t.occurrence > (
                    -- the n-th occurrence in the file is stored unless the assay holds n already
                    SELECT count(*) FROM compounds_measurement m
                    WHERE m.compound_id = c.id AND m.assay_id = %s AND m.value = t.value
                )
                """,
                [assay.pk, assay.pk],
            )
            report.measurements_created += cur.rowcount


# --- Enrichment: properties deferred by big imports ------------------------------------

ENRICH_CHUNK = 20_000


def compounds_enrich_range(*, id_from: int, id_to: int) -> int:
    """Compute the missing properties of compounds with id_from <= id < id_to.

    Idempotent and safe to run on several workers at once: each range is its own
    job, and a row already filled is skipped.
    """
    rows = list(
        Compound.objects.filter(id__gte=id_from, id__lt=id_to, mw__isnull=True).values_list("id", "canonical_smiles")
    )
    updates = []
    for pk, smiles in rows:
        mol = chemistry.Chem.MolFromSmiles(smiles)
        if mol is None:  # cannot happen for a registered canonical SMILES; be safe
            continue
        updates.append(Compound(id=pk, **chemistry.compute_properties(mol)))
    Compound.objects.bulk_update(updates, [*chemistry.PROPERTY_NAMES], batch_size=2000)
    return len(updates)


def compounds_enrich_enqueue(*, chunk: int = ENRICH_CHUNK) -> int:
    """One job per id range of compounds still missing properties; returns the job count."""
    from compounds import jobs

    return _enqueue_id_ranges(Compound.objects.filter(mw__isnull=True), jobs.enrich_range, chunk)


def _enqueue_id_ranges(queryset: QuerySet[Compound], job: Any, chunk: int) -> int:
    """One background job(id_from, id_to) per `chunk` ids spanning `queryset`; the job count."""
    from django.db.models import Max, Min

    from config.jobs import enqueue_background

    bounds = queryset.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return 0
    starts = range(bounds["lo"], bounds["hi"] + 1, chunk)
    for start in starts:
        enqueue_background(job, start, start + chunk)
    return len(starts)


# --- Substructure screen: pattern fingerprints, filled in the background ----------------

PATTERN_CHUNK = 20_000


def compound_patterns_backfill_range(*, id_from: int, id_to: int) -> int:
    """Store the pattern fingerprint of every compound with id_from <= id < id_to that has
    none. Idempotent and safe on several workers at once (each range is its own job)."""
    rows = list(
        Compound.objects.filter(id__gte=id_from, id__lt=id_to, pattern_fp__isnull=True).values_list(
            "id", "canonical_smiles"
        )
    )
    done = 0
    for start in range(0, len(rows), 2000):
        updates = []
        for pk, smiles in rows[start : start + 2000]:
            mol = chemistry.Chem.MolFromSmiles(smiles)
            if mol is not None:  # always, for a registered canonical SMILES
                updates.append(Compound(id=pk, pattern_fp=chemistry.pattern_fingerprint(mol)))
        Compound.objects.bulk_update(updates, ["pattern_fp"], batch_size=2000)
        done += len(updates)
    return done


def compound_patterns_backfill_enqueue(*, chunk: int = PATTERN_CHUNK) -> int:
    """One job per id range of compounds without a pattern fingerprint; returns the job count.
    An import follow-up (settings.CHEMLOOP_IMPORT_FOLLOWUPS)."""
    from compounds import jobs

    return _enqueue_id_ranges(Compound.objects.filter(pattern_fp__isnull=True), jobs.patterns_range, chunk)


def compounds_import_path(*, path: str | os.PathLike[str], **kwargs: Any) -> ImportReport:
    path = os.fspath(path)
    with open(path, "rb") as fh:
        return compounds_import(stream=fh, filename=path, **kwargs)
