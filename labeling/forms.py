"""Forms of the label queue and labeling pages: they parse input; services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from compounds.models import LabelConfidence
from config.roles import LEAD, SCIENTIST
from labeling.models import QueueStatus
from labeling.selectors import ORDERINGS
from labeling.services import HUMAN_SOURCES

STATUS_CHOICES = [("open", "Open (pending + in progress)"), ("all", "All"), *QueueStatus.choices]
BULK_ACTIONS = [("assign", "Assign to…"), ("unassign", "Unassign"), ("skip", "Skip"), ("reset", "Reset to pending")]


def labelers() -> QuerySet[Any]:
    """Users who may label (scientists and leads): the choices of every "assign to" field."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=[SCIENTIST, LEAD]) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    # "me", "none" (unassigned) or a user id; validated loosely because the list changes.
    assigned_to = forms.CharField(required=False, max_length=20)
    model = forms.IntegerField(required=False, min_value=1)
    cycle = forms.UUIDField(required=False)
    sort = forms.ChoiceField(choices=[(k, k) for k in ORDERINGS], required=False)

    def clean_assigned_to(self) -> str:
        value = (self.cleaned_data.get("assigned_to") or "").strip()
        if value not in ("", "me", "none") and not value.isdigit():
            raise forms.ValidationError("Choose a user, me or unassigned.")
        return value


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    items = forms.TypedMultipleChoiceField(coerce=str, required=True, error_messages={"required": "Select at least one item."})
    assignee = forms.ModelChoiceField(queryset=labelers(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = labelers()
        # Item ids are checked by the services (unknown ids are skipped), not by a choices list.
        self.fields["items"].valid_value = lambda value: True  # type: ignore[method-assign]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "assign" and not data.get("assignee"):
            self.add_error("assignee", "Choose who to assign the items to.")
        return data


class LabelForm(forms.Form):
    # A string on purpose: the service parses numbers and class names and names the problem.
    value = forms.CharField(max_length=100, required=False)
    source = forms.ChoiceField(choices=[(s.value, s.label) for s in HUMAN_SOURCES], initial=HUMAN_SOURCES[0])
    confidence = forms.ChoiceField(choices=[("", "—"), *LabelConfidence.choices], required=False, initial="high")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)


class CorrectLabelForm(forms.Form):
    """A lead's correction of a stored label (labeling.services.label_correct)."""

    value = forms.CharField(max_length=100)
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
        help_text="Why the label changed (kept with the item).",
        error_messages={"required": "Say why the label changed."},
    )
