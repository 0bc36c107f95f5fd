import uuid

from django.conf import settings
from django.db import models


class CycleStatus(models.TextChoices):
    SELECTING = "selecting", "Selecting"
    LABELING = "labeling", "Labeling"
    TRAINING = "training", "Training"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ActiveLearningCycle(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The model version the cycle selected with (and retrains from).
    model = models.ForeignKey("mlmodels.MLModel", on_delete=models.CASCADE, related_name="cycles")

    cycle_number = models.PositiveIntegerField()
    selection_strategy = models.CharField(max_length=50)
    strategy_params = models.JSONField(default=dict, blank=True)
    batch_size = models.PositiveIntegerField()
    pool_description = models.CharField(max_length=200, blank=True)

    status = models.CharField(max_length=20, choices=CycleStatus.choices, default=CycleStatus.SELECTING)

    metrics_before = models.JSONField(null=True, blank=True)
    metrics_after = models.JSONField(null=True, blank=True)

    items_selected = models.PositiveIntegerField(default=0)
    items_labeled = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)

    result_model = models.ForeignKey(
        "mlmodels.MLModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by_cycles"
    )
    job = models.ForeignKey("cycles.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "active_learning_cycles"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "cycle_number"], name="uq_cycle_model_number"),
        ]
        indexes = [
            # Cycle history of a lineage, newest first.
            models.Index(fields=["model", "-cycle_number"], name="ix_cycle_model_number"),
            # Reconcile: "cycles stuck in training".
            models.Index(fields=["status"], name="ix_cycle_status"),
        ]

    def __str__(self) -> str:
        return f"Cycle {self.cycle_number} of {self.model}"


class Job(models.Model):
    """Tracking row of a background job, so a crash is visible and a retry is safe."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=50)  # "retrain", "train", "features", "score"
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Reconcile scans unfinished jobs.
            models.Index(fields=["status"], name="ix_job_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
