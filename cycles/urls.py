from django.urls import path

from cycles import views

app_name = "cycles"
urlpatterns = [
    path("", views.history, name="history"),
    path("select/", views.selection, name="selection"),
    path("<uuid:pk>/retrain/", views.cycle_retrain, name="retrain"),
    path("<uuid:pk>/retry/", views.cycle_retry, name="retry"),
    path("jobs/<uuid:pk>/progress/", views.job_progress, name="job_progress"),
]
