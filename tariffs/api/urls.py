"""``/api/v1/`` addresses of the tariffs API (included by ``emobility/api/urls.py``)."""

from django.urls import path, re_path

from .views import QuoteApi, TariffApi, TariffListApi, TariffOcpiApi

#: a tariff's code (its OCPI id): anything but a slash (percent-encoded where needed)
_CODE = r"(?P<code>[^/]+)"

urlpatterns = [
    path("quotes", QuoteApi.as_view(), name="quotes"),
    re_path(r"^tariffs$", TariffListApi.as_view(), name="tariffs"),
    re_path(rf"^tariffs/{_CODE}$", TariffApi.as_view(), name="tariff"),
    re_path(rf"^tariffs/{_CODE}/ocpi$", TariffOcpiApi.as_view(), name="tariff-ocpi"),
]
