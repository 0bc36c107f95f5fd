import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from compounds.models import LabelConfidence, LabelSource


class QueueStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    LABELED = "labeled", "Labeled"
    SKIPPED = "skipped", "Skipped"
    # Labeled items of a superseded model version; kept for provenance.
    ARCHIVED = "archived", "Archived"


OPEN_STATUSES = (QueueStatus.PENDING, QueueStatus.IN_PROGRESS)


class LabelQueueItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    # What to label
    compound = models.ForeignKey("compounds.Compound", on_delete=models.CASCADE, related_name="queue_items")
    model = models.ForeignKey("mlmodels.MLModel", on_delete=models.CASCADE, related_name="queue_items")
    cycle = models.ForeignKey(
        "cycles.ActiveLearningCycle", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )

    # Uncertainty info
    prediction = models.FloatField(null=True, blank=True)
    uncertainty = models.FloatField(null=True, blank=True)
    applicability_distance = models.FloatField(null=True, blank=True)
    # Class probabilities for classification models (list aligned with assay.classes).
    probabilities = models.JSONField(null=True, blank=True)

    # Selection metadata
    selection_strategy = models.CharField(max_length=50)
    selection_batch = models.PositiveIntegerField()
    priority_score = models.FloatField(default=0.0)
    # Why it was picked: score components, cluster, nearest labeled neighbours.
    score_components = models.JSONField(default=dict, blank=True)

    # Labeling
    status = models.CharField(max_length=20, choices=QueueStatus.choices, default=QueueStatus.PENDING)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_items"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    # Label result
    label = models.FloatField(null=True, blank=True)
    label_source = models.CharField(max_length=100, choices=LabelSource.choices, blank=True)
    label_confidence = models.CharField(max_length=20, choices=LabelConfidence.choices, blank=True)
    labeled_at = models.DateTimeField(null=True, blank=True)
    labeled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="labeled_items"
    )
    notes = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "label_queue"
        ordering = ["selection_batch", "-priority_score", "created_at"]
        constraints = [
            # P1 FIX: the same compound is never selected twice into one batch of a model.
            models.UniqueConstraint(
                fields=["compound", "model", "selection_batch"], name="uq_label_queue_compound_model_batch"
            ),
            # Two concurrent selections can never leave one compound open twice for a model.
            models.UniqueConstraint(
                fields=["compound", "model"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="uq_label_queue_open_compound_model",
            ),
            models.CheckConstraint(
                condition=~Q(status="labeled") | Q(label__isnull=False), name="label_queue_labeled_has_label"
            ),
        ]
        indexes = [
            # Queue pages and claim-next filter by status within a model.
            models.Index(fields=["status", "model"], name="ix_label_queue_status_model"),
            # "My items" on the queue page.
            models.Index(fields=["assigned_to", "status"], name="ix_label_queue_assignee_status"),
            # Ordering the open queue by priority.
            models.Index(fields=["model", "status", "-priority_score"], name="ix_label_queue_priority"),
            # The queue page's default view and claim-next: open items of a model in serving
            # order (earlier batches first, each best first), without a sort.
            models.Index(
                fields=["model", "selection_batch", "-priority_score", "created_at"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="ix_label_queue_open_priority",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.compound} for {self.model} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AuditAction(models.TextChoices):
    CLAIM = "claim", "Claimed"
    LABEL = "label", "Labeled"
    CORRECT = "correct", "Label corrected"
    SKIP = "skip", "Skipped"
    ASSIGN = "assign", "Assigned"
    UNASSIGN = "unassign", "Unassigned"
    RESET = "reset", "Reset to pending"
    SELECT = "select", "Selection"
    RETRAIN = "retrain", "Retrain triggered"


class AuditEvent(models.Model):
    """Who did what to a queue item or cycle, and when; old values kept in `data`."""

    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    item = models.ForeignKey(LabelQueueItem, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    cycle = models.ForeignKey(
        "cycles.ActiveLearningCycle", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # An item's history on its page and in admin.
            models.Index(fields=["item", "-created_at"], name="ix_audit_item"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"
