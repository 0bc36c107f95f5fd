from django.urls import path

from mlmodels import views

app_name = "mlmodels"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:pk>/", views.model_detail, name="detail"),
    path("<int:pk>/artifact/", views.model_artifact, name="artifact"),
    path("<int:pk>/metrics.json", views.model_metrics_json, name="metrics_json"),
    path("<int:pk>/explain/<int:compound_pk>/", views.model_explain, name="explain"),
    path("compound/<int:compound_pk>/predictions/", views.compound_predictions, name="compound_predictions"),
]
