"""Payments and dunning (docs/portal.md, "Payments and dunning"): read-only pages of the
operator's payments (with their attempts at the provider and their history) and of the unpaid
invoices being chased. Finance acts in the admin: each page links there.

Every row is read within the portal's operator: another operator's payment or case answers 404.
Lists are paginated (50 a page) and read in a fixed number of queries whatever their length.
"""

from datetime import date

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from invoicing.models import Invoice
from payments import selectors
from payments.models import DunningCase, Payment, PaymentEvent, PaymentSettings
from payments.services.collection import settings_for
from payments.services.dunning import dunning_next_step

from ..access import portal_view

#: rows on a page of a list
PER_PAGE = 50
#: events shown on a page of one payment or case (the admin has them all)
HISTORY_SHOWN = 200
#: the longest invoice number there is
MAX_NUMBER = Invoice._meta.get_field("number").max_length
#: the largest id a row can have (bigint)
MAX_ID = 2**63 - 1

#: the dunning levels the back office names (an operator may name its own)
LEVEL_LABELS = {
    "friendly": gettext_lazy("Friendly reminder"),
    "firm": gettext_lazy("Firm reminder"),
    "final": gettext_lazy("Final reminder"),
}


def _any(choices):
    return [("", gettext_lazy("Any"))] + list(choices)


class PaymentFilterForm(forms.Form):
    """The payments list's filters (GET); an empty field is no filter."""

    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False,
                               choices=_any(Payment.Status.choices))
    channel = forms.ChoiceField(label=gettext_lazy("Method"), required=False,
                                choices=_any(Payment.Channel.choices))
    purpose = forms.ChoiceField(label=gettext_lazy("For"), required=False,
                                choices=_any(Payment.Purpose.choices))
    customer = forms.CharField(label=gettext_lazy("Customer"), required=False,
                               max_length=100, help_text=gettext_lazy(
                                   "Reference or part of the name."))
    invoice = forms.CharField(label=gettext_lazy("Invoice number"), required=False,
                              max_length=MAX_NUMBER)


class DunningFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("Cases"), required=False, choices=[
        ("open", gettext_lazy("Open")), ("closed", gettext_lazy("Closed")),
        ("all", gettext_lazy("All"))])
    customer = forms.CharField(label=gettext_lazy("Customer"), required=False,
                               max_length=100, help_text=gettext_lazy(
                                   "Reference or part of the name."))


def _page(request, rows):
    return Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))


def _customer_match(text: str, prefix: str = "customer__") -> Q:
    return Q(**{f"{prefix}reference__iexact": text}) | Q(**{f"{prefix}name__icontains": text})


def _row_or_404(pk: str):
    """An id from the address that a row could have (else 404 without asking the database)."""
    number = int(pk)
    if number > MAX_ID:
        raise Http404
    return number


# --- payments ----------------------------------------------------------------------------------

def payment_rows(operator, data: dict):
    """The operator's payments, newest first, narrowed by the filter form's ``data``."""
    rows = selectors.payments(operator_id=operator.pk, status=data.get("status") or None,
                              purpose=data.get("purpose") or None,
                              channel=data.get("channel") or None)
    if data.get("customer"):
        rows = rows.filter(_customer_match(data["customer"]),
                           customer__operator_id=operator.pk)
    if data.get("invoice"):
        rows = rows.filter(invoice__operator_id=operator.pk,
                           invoice__number__iexact=data["invoice"])
    return rows


@require_safe
@portal_view
def payment_list(request, operator):
    form = PaymentFilterForm(request.GET)
    rows = payment_rows(operator, form.cleaned_data) if form.is_valid() \
        else Payment.objects.none()
    return render(request, "portal/payments/payment_list.html", {
        "operator": operator, "form": form, "page_obj": _page(request, rows)})


@require_safe
@portal_view
def payment_detail(request, operator, pk):
    payment = selectors.payment_detail(operator_id=operator.pk, payment_id=_row_or_404(pk))
    if payment is None:
        raise Http404
    return render(request, "portal/payments/payment_detail.html", {
        "operator": operator, "payment": payment,
        "attempts": list(payment.attempts.all()),
        "events": list(payment.events.all()[:HISTORY_SHOWN]),
        "admin_url": reverse("admin:payments_payment_change", args=[payment.pk])})


# --- dunning -----------------------------------------------------------------------------------

def next_action(case: DunningCase, config: PaymentSettings) -> tuple[str, date | None]:
    """What dunning does next for ``case`` and from which day (``None``: nothing more, or not
    known yet), as ``payments.services.dunning`` decides it."""
    if not case.is_open:
        return _("Nothing: the case is closed."), None
    step = dunning_next_step(case, config)
    if step is None:
        return _("Nothing: every reminder is sent; finance follows up."), None
    if step.kind == "block":
        return _("Block the customer's tokens"), step.on
    label = LEVEL_LABELS.get(step.name) or _("Reminder “%(name)s”") % {"name": step.name}
    return str(label), step.on


def stage(case: DunningCase, config: PaymentSettings) -> str:
    """The level the case reached (``Firm reminder, 2 of 3``)."""
    if not case.level:
        return _("No reminder yet")
    name = LEVEL_LABELS.get(case.level_name) or case.level_name
    total = max(len(config.dunning_levels or []), case.level)
    return _("%(name)s, %(n)s of %(total)s") % {"name": name, "n": case.level, "total": total}


def _decorate(case: DunningCase, config: PaymentSettings) -> DunningCase:
    case.stage = stage(case, config)
    case.next_label, case.next_on = next_action(case, config)
    invoice = case.invoice
    case.left = max(invoice.amount_due - invoice.amount_paid, 0)
    return case


def dunning_rows(operator, data: dict):
    rows = (DunningCase.objects.filter(operator=operator)
            .select_related("invoice", "customer")
            .annotate(blocked=Count("blocks", filter=Q(blocks__unblocked_at__isnull=True)))
            .order_by("-opened_on", "-pk"))
    state = data.get("state") or "open"
    if state == "open":
        rows = rows.filter(closed_at__isnull=True)
    elif state == "closed":
        rows = rows.filter(closed_at__isnull=False)
    if data.get("customer"):
        rows = rows.filter(_customer_match(data["customer"]), customer__operator=operator)
    return rows


@require_safe
@portal_view
def dunning_list(request, operator):
    form = DunningFilterForm(request.GET)
    rows = dunning_rows(operator, form.cleaned_data) if form.is_valid() \
        else DunningCase.objects.none()
    page_obj = _page(request, rows)
    config = settings_for(operator.pk)
    for case in page_obj.object_list:
        _decorate(case, config)
    return render(request, "portal/payments/dunning_list.html", {
        "operator": operator, "form": form, "page_obj": page_obj})


@require_safe
@portal_view
def dunning_detail(request, operator, pk):
    case = get_object_or_404(
        DunningCase.objects.select_related("invoice", "customer", "late_fee_invoice"),
        pk=_row_or_404(pk), operator=operator)
    _decorate(case, settings_for(operator.pk))
    invoice = case.invoice
    return render(request, "portal/payments/dunning_detail.html", {
        "operator": operator, "case": case, "invoice": invoice,
        "blocks": list(case.blocks.select_related("token").order_by("token__uid")),
        "payments": list(Payment.objects.filter(operator=operator, invoice=invoice)
                         .select_related("method").order_by("instalment", "pk")),
        "events": list(PaymentEvent.objects.filter(operator=operator, invoice=invoice)
                       .order_by("at", "pk")[:HISTORY_SHOWN]),
        "admin_url": reverse("admin:payments_dunningcase_change", args=[case.pk])})


#: an id in an address: digits only (a number no row can have answers 404)
_ID = "<int:pk>"

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("payments/", payment_list, name="payments"),
    path(f"payments/{_ID}/", payment_detail, name="payment"),
    path("dunning/", dunning_list, name="dunning"),
    path(f"dunning/{_ID}/", dunning_detail, name="dunning_case"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("payments", gettext_lazy("Payments")), ("dunning", gettext_lazy("Dunning"))]
