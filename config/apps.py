from django.contrib.admin.apps import AdminConfig


class ChemloopAdminConfig(AdminConfig):
    default_site = "config.admin.ChemloopAdminSite"
