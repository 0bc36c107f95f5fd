from typing import Any

import numpy as np
from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from compounds import chemistry, selectors, services
from compounds.models import Assay, Compound, Dataset, Measurement
from config.exceptions import ValidationFailed
from config.paginator import DeferredJoinPaginator


def structure_thumb(compound: Compound) -> str:
    return format_html(
        '<img src="/compounds/{}/structure.svg?w=120&h=90" width="120" height="90" alt="" loading="lazy">',
        compound.pk,
    )


class CompoundAddForm(forms.ModelForm):
    """Adding a compound in admin goes through the same standardisation as every import:
    a structure is stored only with its canonical SMILES, InChIKey and fingerprint."""

    class Meta:
        model = Compound
        fields = ("smiles", "name", "external_id")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            built = services.compound_build(
                smiles=data.get("smiles", ""), name=data.get("name", ""), external_id=data.get("external_id", "")
            )
        except ValidationFailed as exc:
            raise forms.ValidationError({"smiles": str(exc)}) from None
        existing = Compound.objects.filter(inchikey=built.inchikey).first()
        if existing is not None:
            raise forms.ValidationError(
                {"smiles": f"This structure is already registered as compound #{existing.pk} {existing.name}".rstrip()}
            )
        self.built = built
        return data


class CompoundChangeForm(forms.ModelForm):
    """A renamed compound keeps a one-line name and external id, as every other way in."""

    class Meta:
        model = Compound
        fields = ("name", "external_id")

    def clean_name(self) -> str:
        return chemistry.single_line(self.cleaned_data.get("name") or "")

    def clean_external_id(self) -> str:
        return chemistry.single_line(self.cleaned_data.get("external_id") or "")


# The structure and everything derived from it is read-only once stored: editing the
# SMILES alone would leave the InChIKey, fingerprint and features describing another molecule.
STRUCTURE_FIELDS = (
    "smiles", "canonical_smiles", "inchikey", "mw", "clogp", "tpsa", "hbd", "hba", "rotatable_bonds",
    "heavy_atoms", "fingerprint_bits", "features", "screen", "created_at",
)


@admin.register(Compound)
class CompoundAdmin(admin.ModelAdmin):
    list_display = ("id", "thumb", "name", "inchikey", "mw", "clogp", "heavy_atoms", "created_at")
    search_fields = ("name", "external_id", "inchikey", "canonical_smiles")  # shows the box; see get_search_results
    list_per_page = 50
    paginator = DeferredJoinPaginator  # deep pages of a 1M registry (config.paginator)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        # The compounds page's search (name contains, external id, InChIKey prefix, any SMILES
        # form), which indexes answer: search_fields' icontains on four columns scanned all
        # 1M rows (2.3 s a search).
        if not search_term.strip():
            return queryset, False
        return queryset.filter(pk__in=selectors.compound_search(query=search_term).values("pk")), False

    def get_form(self, request: HttpRequest, obj: Compound | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = CompoundAddForm if obj is None else CompoundChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Compound | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("smiles", "name", "external_id")
        return ("thumb", "name", "external_id", *STRUCTURE_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Compound | None = None) -> tuple[str, ...]:
        return () if obj is None else ("thumb", *STRUCTURE_FIELDS)

    def save_model(self, request: HttpRequest, obj: Compound, form: Any, change: bool) -> None:
        if not change:
            built = form.built
            for field in Compound._meta.concrete_fields:
                if not field.primary_key:
                    setattr(obj, field.attname, getattr(built, field.attname))
        super().save_model(request, obj, form, change)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[str]]:
        # Django shows "protected" objects instead of the confirm button, on the delete page
        # and for "Delete selected" alike, and deletes nothing while there are any.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        compounds = list(objs)
        blockers = selectors.compound_delete_blockers(compound_ids=[c.pk for c in compounds])
        for compound in compounds:
            for reason in blockers.get(compound.pk, []):
                protected.append(f"Compound #{compound.pk} {compound.label} cannot be deleted: {reason}.")
        if protected:
            # The page shows missing permissions first (queue items are never deletable);
            # the reasons above say more, and nothing is deleted either way.
            perms_needed = set()
        return deleted, counts, perms_needed, list(protected)

    @admin.display(description="Structure")
    def thumb(self, obj: Compound) -> str:
        return structure_thumb(obj)

    @admin.display(description="Morgan fingerprint")
    def fingerprint_bits(self, obj: Compound) -> str:
        n = len(bytes(obj.fingerprint or b"")) * 8
        on = sum(bin(b).count("1") for b in bytes(obj.fingerprint or b""))
        return f"{on} of {n} bits set" if n else "—"

    @admin.display(description="Stored features")
    def features(self, obj: Compound) -> str:
        if not obj.feature_vector:
            return "not computed yet (computed on demand or by the background job)"
        text = f"{obj.feature_set}: {len(bytes(obj.feature_vector)) // 4} values"
        if obj.prior_columns:
            values = ", ".join(f"{v:.4g}" for v in np.frombuffer(bytes(obj.prior_columns), dtype=np.float32))
            text += f"; the physico-chemical prior's columns ({values}) under key {obj.prior_key}"
        return text

    @admin.display(description="Substructure screen")
    def screen(self, obj: Compound) -> str:
        return "stored" if obj.pattern_fp else "not computed yet (every search parses this compound)"


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)
    list_select_related = ("created_by",)


class AssayForm(forms.ModelForm):
    """Task type, classes and range checked by the same rule as the API's assay create."""

    class Meta:
        model = Assay
        fields = ("name", "description", "task_type", "classes", "units", "direction", "min_value", "max_value")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        # A read-only field (an assay in use) is not in the form: its stored value counts.
        current = {f: data[f] if f in data else getattr(self.instance, f) for f in ASSAY_MEANING_FIELDS}
        try:
            services.assay_settings_check(
                task_type=current["task_type"], classes=current["classes"] or [],
                min_value=data.get("min_value"), max_value=data.get("max_value"),
            )
        except ValidationFailed as exc:
            field = exc.extra.get("field")
            self.add_error(field if field in self.fields else None, exc.message)
        return data


# What every stored value of an assay means: a measurement of a classification assay is an
# index into `classes`, a regression value is a number in `units`. Once measurements or
# models exist, changing these would silently re-read them (a class label stored as
# 1.0 becoming 1.0 logS), so they are fixed; a different meaning is a new assay.
# The plausible range and direction stay editable: they gate new labels and steer the
# selection, and never change what a stored value says.
ASSAY_MEANING_FIELDS = ("task_type", "classes", "units")


@admin.register(Assay)
class AssayAdmin(admin.ModelAdmin):
    list_display = ("name", "task_type", "units", "direction", "plausible_range", "created_at")
    list_filter = ("task_type",)
    search_fields = ("name",)
    form = AssayForm

    def get_readonly_fields(self, request: HttpRequest, obj: Assay | None = None) -> tuple[str, ...]:
        if obj is not None and selectors.assay_in_use(assay=obj):
            return (*ASSAY_MEANING_FIELDS, "created_at")
        return ("created_at",)

    @admin.display(description="Plausible range")
    def plausible_range(self, obj: Assay) -> str:
        return "—" if obj.is_classification else obj.range_text()


class MeasurementForm(forms.ModelForm):
    """Values typed in admin pass the same checks as every other way a label comes in."""

    # Text, parsed by the service: a number, or a class name for a classification assay.
    value = forms.CharField(max_length=100, help_text="A number; for a classification assay the class name (an index only when no class name is a number).")

    class Meta:
        model = Measurement
        fields = ("compound", "assay", "value", "source", "confidence", "notes")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assay, value = data.get("assay"), data.get("value")
        if assay is not None and value is not None:
            try:
                data["value"] = services.parse_measurement_value(assay, value)
            except ValidationFailed as exc:
                self.add_error("value", exc.message)
        return data


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("compound", "assay", "value", "source", "confidence", "created_by", "created_at")
    list_filter = ("assay", "source", "confidence")
    search_fields = ("compound__name", "compound__inchikey", "compound__canonical_smiles")
    list_select_related = ("compound", "assay", "created_by")
    raw_id_fields = ("compound",)
    form = MeasurementForm

    def get_readonly_fields(self, request: HttpRequest, obj: Measurement | None = None) -> tuple[str, ...]:
        # A label given in the queue is corrected there (the item's label and the audit
        # trail change with it): "Correct this label" on its labeling page, or the correct API.
        if obj is not None and obj.queue_item_id:
            return ("compound", "assay", "value", "queue_item", "created_by", "created_at")
        # The link to a queue item is made by labeling that item, never typed in.
        return ("queue_item", "created_by", "created_at")

    def save_model(self, request: HttpRequest, obj: Measurement, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[str]]:
        # Shown instead of the confirm button (delete page and "Delete selected"): nothing is deleted.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        measurements = list(objs)
        blockers = selectors.measurement_delete_blockers(measurement_ids=[m.pk for m in measurements])
        for m in measurements:
            if m.pk in blockers:
                protected.append(f"Measurement “{m}” cannot be deleted: {blockers[m.pk]}.")
        return deleted, counts, perms_needed, list(protected)
