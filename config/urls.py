from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("compounds/", include("compounds.urls")),
    path("models/", include("mlmodels.urls")),
    path("queue/", include("labeling.urls")),
    path("cycles/", include("cycles.urls")),
    path("api/", include("config.api_urls")),
    path("admin/", admin.site.urls),
]
