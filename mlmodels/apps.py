from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    name = "mlmodels"
