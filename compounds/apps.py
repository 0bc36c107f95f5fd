from django.apps import AppConfig


class CompoundsConfig(AppConfig):
    name = "compounds"
    verbose_name = "Compound registry"
