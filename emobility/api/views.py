"""The API's own views."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions
from rest_framework.views import APIView


class UnknownEndpointApi(APIView):
    """Any path under ``/api/v1/`` that no endpoint serves: 404 in the API's error body."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    schema = None  # not an endpoint: left out of the OpenAPI document

    def initial(self, request, *args, **kwargs):
        raise exceptions.NotFound(_("There is no API endpoint at this address."))
