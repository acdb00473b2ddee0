from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from .views import healthz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("emobility.api.urls")),
    path("payments/", include("payments.urls")),
]
