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
