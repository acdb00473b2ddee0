"""``/api/v1/`` addresses of the payments API (included by ``emobility/api/urls.py``)."""

from importlib import import_module

urlpatterns = []
for _module in ("adhoc", "payments"):
    try:
        urlpatterns += import_module(f"{__name__.rsplit('.', 1)[0]}.{_module}").urlpatterns
    except ModuleNotFoundError as error:  # an area not written yet
        if not error.name.endswith(f".{_module}"):
            raise
