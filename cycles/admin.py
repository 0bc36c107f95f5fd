from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from config.admin import RecordAdmin
from cycles.models import ActiveLearningCycle, Job


@admin.register(ActiveLearningCycle)
class ActiveLearningCycleAdmin(RecordAdmin):
    list_display = (
        "cycle_number", "model", "status", "selection_strategy", "batch_size",
        "items_selected", "items_labeled", "items_skipped", "open_items", "started_at", "completed_at",
    )
    list_filter = ("status", "selection_strategy", "model")
    list_select_related = ("model", "result_model", "job")
    # Cycles are opened by a selection and closed by their retrain job; status, counts and
    # the result model are their record, so admin shows them read-only.
    readonly_fields = [f.name for f in ActiveLearningCycle._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActiveLearningCycle]:
        # One annotated query instead of a count per row.
        return super().get_queryset(request).annotate(
            n_open=Count("items", filter=Q(items__status__in=["pending", "in_progress"]))
        )

    @admin.display(description="Open items", ordering="n_open")
    def open_items(self, obj: Any) -> int:
        return obj.n_open


@admin.register(Job)
class JobAdmin(RecordAdmin):
    """Jobs are written by workers; admin shows them read-only."""

    list_display = ("id", "kind", "status", "stage", "percent", "created_at", "finished_at")
    list_filter = ("status", "kind")
    readonly_fields = [f.name for f in Job._meta.fields]
