"""``/payments/``: providers' webhooks and drivers' public receipts."""

from django.urls import re_path

from .views import WebhookView

app_name = "payments"

urlpatterns = [
    re_path(r"^webhooks/(?P<gateway>[a-z_]{1,20})/$", WebhookView.as_view(), name="webhook"),
]
