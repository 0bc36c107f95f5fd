from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("label/", views.labeling, name="labeling"),
]
