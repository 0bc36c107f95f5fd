from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.roles import LEAD, has_role


class ChemloopAdminSite(admin.AdminSite):
    site_header = "chemloop admin"
    site_title = "chemloop admin"
    index_title = "Registry, queue and models"

    def has_permission(self, request: HttpRequest) -> bool:
        # Only leads (and superusers) reach admin, whatever their is_staff flag says.
        user = request.user
        return bool(user.is_active and (user.is_superuser or has_role(user, LEAD)))


class RecordAdmin(admin.ModelAdmin):
    """A record written by the services (audit trail, jobs, cycles, model versions): admin
    shows it and never adds, edits or deletes it, which would break the provenance."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
