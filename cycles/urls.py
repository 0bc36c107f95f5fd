from django.urls import path

from cycles import views

app_name = "cycles"
urlpatterns = [
    path("", views.history, name="history"),
    path("select/", views.selection, name="selection"),
]
