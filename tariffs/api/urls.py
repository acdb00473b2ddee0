from django.urls import path

from .views import QuoteApi

urlpatterns = [
    path("quotes", QuoteApi.as_view(), name="quotes"),
]
