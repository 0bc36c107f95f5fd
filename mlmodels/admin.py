
from django.contrib import admin

from config.admin import RecordAdmin
from mlmodels.models import MLModel, ValidationSet


@admin.register(MLModel)
class MLModelAdmin(RecordAdmin):
    list_display = ("name", "version", "status", "assay", "algorithm", "training_size", "trained_at")
    list_filter = ("status", "assay")
    search_fields = ("name",)
    list_select_related = ("assay",)
    # Versions are made by training (train_model, retrains) and activated by the services;
    # editing a status, version or artifact here would break the lineage's record.
    readonly_fields = [f.name for f in MLModel._meta.fields]


@admin.register(ValidationSet)
class ValidationSetAdmin(RecordAdmin):
    list_display = ("name", "assay", "size", "created_at")
    list_filter = ("assay",)
    search_fields = ("name",)
    list_select_related = ("assay",)
    # Frozen with version 1 of a lineage: changing it would make metrics incomparable.
    readonly_fields = ("assay", "name", "description", "compounds", "values", "created_at")

    @admin.display(description="Compounds")
    def size(self, obj: ValidationSet) -> int:
        return obj.compounds.count()
