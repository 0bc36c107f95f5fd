from django import forms
from django.conf import settings
from django.db import models
from django.template.defaultfilters import filesizeformat

from compounds.models import Assay, TaskType


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV/TSV with a SMILES column, an SDF, or a .smi file")
    dataset = forms.CharField(max_length=200, help_text="Name of the dataset the compounds join")
    smiles_column = forms.CharField(max_length=100, required=False, help_text="Default: detected (smiles)")
    name_column = forms.CharField(max_length=100, required=False, help_text="Default: detected (name / id)")
    value_column = forms.CharField(max_length=100, required=False, help_text="Column with assay values")
    assay = forms.ModelChoiceField(queryset=Assay.objects.all(), required=False)
    new_assay = forms.CharField(max_length=200, required=False, help_text="…or create an assay with this name")
    task_type = forms.ChoiceField(choices=TaskType.choices, initial=TaskType.REGRESSION, required=False)
    units = forms.CharField(max_length=50, required=False)
    # One per line, not comma-separated: class names may contain commas ("soluble, yes").
    classes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=10_000,
        help_text="Classification: the new assay's class names, one per line, in order",
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        f = self.cleaned_data["file"]
        if f.size > settings.CHEMLOOP_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {filesizeformat(f.size)}; the limit is {filesizeformat(settings.CHEMLOOP_MAX_UPLOAD_BYTES)}. "
                "Split it, or import it with `manage.py import_compounds`, which has no limit."
            )
        return f

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if data.get("value_column") and not (data.get("assay") or data.get("new_assay")):
            self.add_error("assay", "Choose or name the assay the values belong to.")
        new_classification = (
            data.get("new_assay") and not data.get("assay") and data.get("task_type") == TaskType.CLASSIFICATION
        )
        if new_classification and len(data.get("classes") or []) < 2:
            self.add_error("classes", "A classification assay needs its classes: two or more, one per line.")
        return data

    def clean_classes(self) -> list[str]:
        lines = (self.cleaned_data.get("classes") or "").splitlines()
        return [line.strip() for line in lines if line.strip()]


class SearchMode(models.TextChoices):
    TEXT = "text", "Name / ID / exact SMILES"
    SUBSTRUCTURE = "substructure", "Substructure"
    SIMILARITY = "similarity", "Similarity"


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=1000)
    mode = forms.ChoiceField(choices=SearchMode.choices, required=False)
    threshold = forms.FloatField(required=False, min_value=0.0, max_value=1.0, help_text="Tanimoto, 0–1")
    dataset = forms.IntegerField(required=False, min_value=1)

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or SearchMode.TEXT

    def clean_threshold(self) -> float:
        value = self.cleaned_data.get("threshold")
        return 0.5 if value is None else value
