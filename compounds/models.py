from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper


class TaskType(models.TextChoices):
    REGRESSION = "regression", "Regression"
    CLASSIFICATION = "classification", "Classification"


class Direction(models.TextChoices):
    # Which end of the scale is "good" when hunting for the best compounds.
    MAXIMIZE = "maximize", "Higher is better"
    MINIMIZE = "minimize", "Lower is better"


class LabelSource(models.TextChoices):
    EXPERIMENTAL = "experimental", "Experimental"
    LITERATURE = "literature", "Literature"
    EXPERT_ESTIMATE = "expert_estimate", "Expert estimate"
    IMPORTED = "imported", "Imported"


class LabelConfidence(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Compound(models.Model):
    smiles = models.TextField(help_text="SMILES as submitted")
    canonical_smiles = models.TextField()
    inchikey = models.CharField(max_length=27, unique=True)
    name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    # Null until computed: big imports register the identity first and fill these
    # in the chunked `compounds_enrich` job (see compounds.services).
    mw = models.FloatField(null=True, blank=True)
    clogp = models.FloatField(null=True, blank=True)
    tpsa = models.FloatField(null=True, blank=True)
    hbd = models.PositiveSmallIntegerField(null=True, blank=True)
    hba = models.PositiveSmallIntegerField(null=True, blank=True)
    rotatable_bonds = models.PositiveSmallIntegerField(null=True, blank=True)
    heavy_atoms = models.PositiveSmallIntegerField()
    # Packed Morgan fingerprint (radius 2, 2048 bits): pools are scored from this
    # column without re-parsing a single molecule.
    fingerprint = models.BinaryField()
    # Per-compound model features beyond the fingerprint (float32 bytes), filled by a
    # background job; `feature_set` names the featurizer that produced them.
    feature_vector = models.BinaryField(null=True, blank=True)
    feature_set = models.CharField(max_length=64, blank=True)
    # The physico-chemical prior's columns for that vector (float32 bytes), stored with it
    # so scoring a pool skips the prior's boosters; valid only for an ensemble whose prior
    # has this key (mlmodels.ml.physchem.PhyschemPrior.key).
    prior_columns = models.BinaryField(null=True, blank=True)
    prior_key = models.CharField(max_length=16, blank=True)
    # Packed RDKit pattern fingerprint (chemistry.PATTERN_FP_BITS), the substructure
    # search's screen; null until the background job has computed it.
    pattern_fp = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Compound search by name (icontains falls back to scan; exact/prefix use it).
            models.Index(fields=["name"], name="compound_name_idx"),
            # Compound search by external id (iexact). Name contains and canonical SMILES
            # equals have PostgreSQL-only indexes (trigram, hash): migration 0006.
            models.Index(Upper("external_id"), name="compound_external_id_upper_idx"),
            # Feature backfill job: "compounds whose features are missing or stale".
            models.Index(fields=["feature_set"], name="compound_feature_set_idx"),
            # Enrichment job: "compounds whose properties are still missing".
            models.Index(fields=["id"], condition=models.Q(mw__isnull=True), name="compound_needs_props_idx"),
            # Pattern backfill job: "compounds whose substructure screen is missing".
            models.Index(fields=["id"], condition=models.Q(pattern_fp__isnull=True), name="compound_needs_pattern_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.inchikey

    @property
    def label(self) -> str:
        return self.name or self.external_id or f"C{self.pk}"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    compounds = models.ManyToManyField(Compound, through="DatasetMembership", related_name="datasets")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetMembership(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE)
    compound = models.ForeignKey(Compound, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "compound"], name="uq_dataset_compound"),
        ]

    def __str__(self) -> str:
        return f"{self.compound_id} in {self.dataset_id}"


class Assay(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    units = models.CharField(max_length=50, blank=True)
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.REGRESSION)
    # Ordered class names for classification; a measurement stores the class index.
    classes = models.JSONField(default=list, blank=True)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.MAXIMIZE)
    # Plausible range of a regression label (either end optional): a value outside it is
    # refused wherever labels enter (labeling, API, import, admin), e.g. a value in the wrong units.
    min_value = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-1e38), MaxValueValidator(1e38)],
        help_text="Lowest plausible value; labels below it are refused. Empty: no limit.",
    )
    max_value = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-1e38), MaxValueValidator(1e38)],
        help_text="Highest plausible value; labels above it are refused. Empty: no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(task_type="regression") | Q(task_type="classification"),
                name="assay_task_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True) | Q(max_value__isnull=True) | Q(min_value__lt=F("max_value")),
                name="assay_range_ordered",
                violation_error_message="The lowest plausible value must be below the highest.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_classification(self) -> bool:
        return self.task_type == TaskType.CLASSIFICATION

    def range_text(self) -> str:
        low = "−∞" if self.min_value is None else f"{self.min_value:g}"
        high = "∞" if self.max_value is None else f"{self.max_value:g}"
        return f"{low} to {high}{' ' + self.units if self.units else ''}"

    def format_value(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.is_classification:
            i = int(value)
            return self.classes[i] if 0 <= i < len(self.classes) else f"class {i}"
        return f"{value:.3g}"


class Measurement(models.Model):
    compound = models.ForeignKey(Compound, on_delete=models.CASCADE, related_name="measurements")
    assay = models.ForeignKey(Assay, on_delete=models.CASCADE, related_name="measurements")
    # Regression: the measured value. Classification: the index into assay.classes.
    value = models.FloatField()
    source = models.CharField(max_length=20, choices=LabelSource.choices, default=LabelSource.EXPERIMENTAL)
    confidence = models.CharField(max_length=10, choices=LabelConfidence.choices, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Provenance: the queue item whose label created this measurement.
    queue_item = models.ForeignKey(
        "labeling.LabelQueueItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="measurements"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Training sets and "is this compound labeled?" look up by assay then compound.
            models.Index(fields=["assay", "compound"], name="measurement_assay_compound_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value__lt=1e300) & Q(value__gt=-1e300),
                name="measurement_value_finite",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assay}: {self.value} ({self.compound})"

    @property
    def display_value(self) -> str:
        return self.assay.format_value(self.value)
