"""``/api/v1/`` addresses of the payments API (included by ``emobility/api/urls.py``)."""

from . import adhoc, payments

urlpatterns = [*payments.urlpatterns, *adhoc.urlpatterns]
