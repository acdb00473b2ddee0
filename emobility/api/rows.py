"""Finding the rows a request names within its operator, and answering a list of rows.

A path segment that could name no row (too long, or with a NUL character PostgreSQL refuses) is
answered 404 without asking the database, like a row of another operator.
"""

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

from emobility.models import Customer, Operator

#: the longest customer reference there is (a longer one is no customer: 404)
MAX_REFERENCE = Customer._meta.get_field("reference").max_length


def usable(text: str, longest: int) -> bool:
    """Whether a path segment could name a row at all (PostgreSQL refuses NUL characters)."""
    return 0 < len(text) <= longest and "\x00" not in text


def customer_or_404(operator: Operator, reference: str) -> Customer:
    """The operator's customer with this reference (else 404)."""
    customer = (Customer.objects.filter(operator=operator, reference=reference).first()
                if usable(reference, MAX_REFERENCE) else None)
    if customer is None:
        raise exceptions.NotFound(_("No customer with this reference."))
    return customer


def page(request, view, queryset, shape):
    """One page of ``queryset`` (``?page=``), each row as ``shape(row)``."""
    paginator = PageNumberPagination()
    rows = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([shape(row) for row in rows])
