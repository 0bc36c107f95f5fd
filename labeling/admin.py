"""Queue items and their audit trail in Django admin (leads only; see config.admin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from compounds.admin import structure_thumb
from config.admin import RecordAdmin
from config.exceptions import ApplicationError
from labeling import services
from labeling.forms import labelers
from labeling.models import AuditEvent, LabelQueueItem


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=labelers(), label="Assign to", empty_label=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = labelers()


# The assign page names this many of the selected items; the rest are counted.
ASSIGN_PREVIEW = 50


@admin.register(LabelQueueItem)
class LabelQueueItemAdmin(admin.ModelAdmin):
    list_display = (
        "thumb", "compound", "status", "assigned_to", "model", "selection_batch", "priority_score", "cycle", "created_at",
    )
    list_filter = ("status", "model", "assigned_to", "selection_strategy")
    search_fields = ("compound__name", "compound__canonical_smiles", "compound__inchikey")
    # cycle__model: a cycle's __str__ names its model; without it every row costs a query.
    list_select_related = ("compound", "model", "assigned_to", "cycle", "cycle__model")
    # Every state change goes through the services (the actions below, the labeling page,
    # the API): they check the transition, keep label and measurement together and write
    # the audit trail. A free status field let admin store a "labeled" item without a label.
    readonly_fields = tuple(
        f.name for f in LabelQueueItem._meta.fields if f.name not in ("id",)
    )
    list_per_page = 50
    actions = ("assign_to_user", "skip_items", "reset_items")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items come from a selection

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An item changes only through the audited actions: deleting one (even a pending,
        # never-touched one) would leave its cycle's counts off and no trace in the history.
        return False

    @admin.display(description="Structure")
    def thumb(self, obj: LabelQueueItem) -> str:
        return structure_thumb(obj.compound)

    def _ids(self, queryset: QuerySet[LabelQueueItem]) -> list[Any]:
        return list(queryset.values_list("pk", flat=True))

    @admin.action(description="Assign to user…")
    def assign_to_user(self, request: HttpRequest, queryset: QuerySet[LabelQueueItem]) -> HttpResponse | None:
        # Django re-posts the action with "apply" from the intermediate page, selection intact.
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            assignee = form.cleaned_data["assignee"]
            ids = self._ids(queryset)
            try:
                done = services.queue_items_assign(item_ids=ids, assignee_id=assignee.pk, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self._report(request, f"Assigned to {assignee.username}", done)
            return None
        # "Select all N" posts select_across, and the changelist's filters are in the URL this
        # page posts back to: Django re-selects the same rows. Listing every id as a hidden
        # field instead made a 1 MB page for 6,000 items and a post over
        # DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000), refused with a bare 400.
        select_across = request.POST.get("select_across") == "1"
        context = {
            **self.admin_site.each_context(request),
            "title": "Assign queue items",
            "opts": self.model._meta,
            "items": queryset.select_related("compound", "model", "assigned_to")[:ASSIGN_PREVIEW],
            "total": queryset.count(),
            "select_across": select_across,
            "ids": [] if select_across else self._ids(queryset),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/labeling/assign_intermediate.html", context)

    @admin.action(description="Skip")
    def skip_items(self, request: HttpRequest, queryset: QuerySet[LabelQueueItem]) -> None:
        ids = self._ids(queryset)
        try:
            self._report(request, "Skipped", services.queue_items_skip(item_ids=ids, user=request.user))
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Reset to pending")
    def reset_items(self, request: HttpRequest, queryset: QuerySet[LabelQueueItem]) -> None:
        ids = self._ids(queryset)
        try:
            self._report(request, "Reset to pending", services.queue_items_reset(item_ids=ids, user=request.user))
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def _report(self, request: HttpRequest, verb: str, outcome: services.BulkOutcome) -> None:
        note = f"; {outcome.refusals_text()}" if outcome.refused else ""
        level = messages.SUCCESS if outcome.done else messages.WARNING
        self.message_user(request, f"{verb}: {outcome.done} of {outcome.total} items{note}.", level)


@admin.register(AuditEvent)
class AuditEventAdmin(RecordAdmin):
    """The audit trail is evidence: nobody edits or deletes it from admin."""

    list_display = ("created_at", "action", "actor", "queue_item", "cycle", "data")
    list_filter = ("action",)
    search_fields = ("actor__username", "item__compound__name")
    list_select_related = ("actor", "item__compound", "item__model", "cycle__model")
    readonly_fields = ("action", "actor", "item", "cycle", "data", "created_at")

    @admin.display(description="Item")
    def queue_item(self, obj: AuditEvent) -> str:
        # The compound and version only: an item's *current* status beside an old event
        # read as if it were the status at the time.
        return f"{obj.item.compound} for {obj.item.model}" if obj.item else "—"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The table came after the role migration granted permissions, so no group holds
        # view_auditevent; every admin user is a lead (config.admin), and leads may read it.
        return self.admin_site.has_permission(request)
