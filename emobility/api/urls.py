"""``/api/v1/``: each app's API URLs, then a JSON 404 for every other path."""

from django.urls import include, path, re_path

from .views import UnknownEndpointApi

app_name = "api"

urlpatterns = [
    path("", include("tariffs.api.urls")),
    re_path(r"^", UnknownEndpointApi.as_view()),
]
