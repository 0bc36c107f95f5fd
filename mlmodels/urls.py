from django.urls import path

from mlmodels import views

app_name = "mlmodels"
urlpatterns = [
    path("", views.model_list, name="list"),
]
