"""``/api/v1/`` addresses of the invoicing API (included by ``emobility/api/urls.py``)."""

from . import views

urlpatterns = [*views.urlpatterns]
