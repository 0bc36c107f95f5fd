from django.urls import path

from compounds import views

app_name = "compounds"
urlpatterns = [
    path("", views.compound_list, name="list"),
    path("import/", views.compound_import, name="import"),
    path("export.csv", views.compound_export, name="export"),
    path("<int:pk>/", views.compound_detail, name="detail"),
    path("<int:pk>/structure.svg", views.compound_structure, name="structure"),
    path("<int:pk>/similar/", views.compound_similar, name="similar"),
]
