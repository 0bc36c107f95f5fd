from django.contrib import admin
from django.utils.html import format_html

from compounds.models import Assay, Compound, Dataset, Measurement


def structure_thumb(compound: Compound) -> str:
    return format_html(
        '<img src="/compounds/{}/structure.svg?w=120&h=90" width="120" height="90" alt="" loading="lazy">',
        compound.pk,
    )


@admin.register(Compound)
class CompoundAdmin(admin.ModelAdmin):
    list_display = ("id", "thumb", "name", "inchikey", "mw", "clogp", "heavy_atoms", "created_at")
    search_fields = ("name", "external_id", "inchikey", "canonical_smiles")
    readonly_fields = ("canonical_smiles", "inchikey", "fingerprint", "feature_vector", "feature_set", "created_at")
    exclude = ()
    list_per_page = 50

    @admin.display(description="Structure")
    def thumb(self, obj: Compound) -> str:
        return structure_thumb(obj)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)
    list_select_related = ("created_by",)


@admin.register(Assay)
class AssayAdmin(admin.ModelAdmin):
    list_display = ("name", "task_type", "units", "direction", "created_at")
    list_filter = ("task_type",)
    search_fields = ("name",)


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("compound", "assay", "value", "source", "confidence", "created_by", "created_at")
    list_filter = ("assay", "source", "confidence")
    search_fields = ("compound__name", "compound__inchikey", "compound__canonical_smiles")
    list_select_related = ("compound", "assay", "created_by")
    raw_id_fields = ("compound", "queue_item")
