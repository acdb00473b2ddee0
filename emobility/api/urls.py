"""``/api/v1/``: each app's API URLs, then a JSON 404 for every other path."""

from django.urls import include, path, re_path

from . import network
from .cdrs import CdrImportApi, CdrImportErrorsApi, CdrImportListApi, CdrsApi
from .views import UnknownEndpointApi

app_name = "api"

#: an id the database can hold (bigint): longer numbers are no id, and answer 404
_ID = r"(?P<pk>[0-9]{1,18})"

urlpatterns = [
    path("", include("tariffs.api.urls")),
    path("", include("promotions.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("invoicing.api.urls")),
    path("", include(network.urlpatterns)),
    path("cdrs", CdrsApi.as_view(), name="cdrs"),
    path("cdr-imports", CdrImportListApi.as_view(), name="cdr-imports"),
    re_path(rf"^cdr-imports/{_ID}$", CdrImportApi.as_view(), name="cdr-import"),
    re_path(rf"^cdr-imports/{_ID}/errors\.csv$", CdrImportErrorsApi.as_view(),
            name="cdr-import-errors"),
    re_path(r"^", UnknownEndpointApi.as_view(), name="unknown"),
]
