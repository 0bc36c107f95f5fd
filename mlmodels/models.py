from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelStatus(models.TextChoices):
    TRAINING = "training", "Training"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"


class Algorithm(models.TextChoices):
    XGBOOST = "xgboost", "XGBoost"
    RF = "rf", "Random forest"


class ValidationSet(models.Model):
    """The fixed validation compounds of a model lineage, frozen when version 1 is created."""

    assay = models.ForeignKey("compounds.Assay", on_delete=models.PROTECT, related_name="validation_sets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    compounds = models.ManyToManyField("compounds.Compound", related_name="validation_sets")
    # The measured values the set is scored against, {compound id: value}, frozen the first
    # time the set is used (version 1): a measurement added later to a validation compound
    # must not move the yardstick every later version is compared on.
    values = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class MLModel(models.Model):
    """One trained version of a model lineage; the lineage is all rows sharing `name`."""

    name = models.CharField(max_length=200)
    assay = models.ForeignKey("compounds.Assay", on_delete=models.PROTECT, related_name="models")
    version = models.PositiveIntegerField(default=1)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.TRAINING)
    algorithm = models.CharField(max_length=20, choices=Algorithm.choices, default=Algorithm.XGBOOST)
    n_members = models.PositiveSmallIntegerField(default=10)
    hyperparameters = models.JSONField(default=dict, blank=True)
    featurizer = models.JSONField(default=dict, blank=True)
    # Path of the joblib artifact, relative to settings.ARTIFACT_ROOT.
    artifact = models.CharField(max_length=500, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    training_size = models.PositiveIntegerField(default=0)
    validation_set = models.ForeignKey(ValidationSet, on_delete=models.PROTECT, related_name="models")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="uq_mlmodel_name_version"),
            # At most one active version per lineage, enforced by the database.
            models.UniqueConstraint(
                fields=["name"], condition=Q(status="active"), name="uq_mlmodel_one_active_per_name"
            ),
        ]
        indexes = [
            # "The active version of lineage X" and version lists.
            models.Index(fields=["name", "status"], name="mlmodel_name_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_classification(self) -> bool:
        return self.assay.is_classification
