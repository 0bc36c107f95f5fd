from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mlmodels.models import MLModel, ValidationSet


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "status", "assay", "algorithm", "training_size", "trained_at")
    list_filter = ("status", "assay")
    search_fields = ("name",)
    list_select_related = ("assay",)
    raw_id_fields = ("parent", "validation_set", "created_by")
    # Artifacts and metrics are produced by training only; editing them would break provenance.
    readonly_fields = ("artifact", "metrics", "training_size", "trained_at", "created_at", "featurizer")


@admin.register(ValidationSet)
class ValidationSetAdmin(admin.ModelAdmin):
    list_display = ("name", "assay", "size", "created_at")
    list_filter = ("assay",)
    search_fields = ("name",)
    list_select_related = ("assay",)
    # Frozen with version 1 of a lineage: changing it would make metrics incomparable.
    readonly_fields = ("compounds",)

    @admin.display(description="Compounds")
    def size(self, obj: ValidationSet) -> int:
        return obj.compounds.count()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
