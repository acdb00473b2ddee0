"""``/payments/``: providers' webhooks and drivers' public receipts."""

from django.urls import re_path

from .views import ReceiptPdfView, ReceiptView, WebhookView

app_name = "payments"

urlpatterns = [
    re_path(r"^webhooks/(?P<gateway>[a-z_]{1,20})/$", WebhookView.as_view(), name="webhook"),
]

#: a receipt's token (``secrets.token_urlsafe(32)``: 43 characters of A-Z a-z 0-9 - _)
_RECEIPT = r"(?P<token>[A-Za-z0-9_-]{20,64})"

urlpatterns += [
    re_path(rf"^receipts/{_RECEIPT}/$", ReceiptView.as_view(), name="receipt"),
    re_path(rf"^receipts/{_RECEIPT}/pdf$", ReceiptPdfView.as_view(), name="receipt-pdf"),
]
