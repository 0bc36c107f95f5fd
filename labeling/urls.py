from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.queue_bulk, name="bulk"),
    path("export.csv", views.queue_export, name="export"),
    path("label/", views.labeling, name="labeling"),
    path("label/<uuid:pk>/", views.item_detail, name="item"),
    path("label/<uuid:pk>/submit/", views.item_submit, name="submit"),
    path("label/<uuid:pk>/skip/", views.item_skip, name="skip"),
    path("label/<uuid:pk>/correct/", views.item_correct, name="correct"),
    path("label/<uuid:pk>/unskip/", views.item_unskip, name="unskip"),
]
