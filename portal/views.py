"""The CPO manager portal: log-in, the operator switch and the dashboard (docs/portal.md)."""

from zoneinfo import ZoneInfo

from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from invoicing.services.invoices import settings_for

from .access import portal_view
from .forms import OperatorForm, PeriodForm
from .selectors import dashboard as dashboard_figures
from .selectors import last_month
from .tenancy import operator_choose, portal_operators


@portal_view
def dashboard(request, operator):
    # "last month" as the operator's invoices count months: in its invoicing time zone
    zone = ZoneInfo(settings_for(operator).time_zone)
    default = last_month(timezone.localdate(timezone=zone))
    form = PeriodForm(request.GET if request.GET else None,
                      initial={"first": default.first, "last": default.last})
    if not request.GET:
        period = default
    elif form.is_valid():
        period = form.period()
    else:
        period = None
    figures = dashboard_figures(operator=operator, period=period) if period else None
    context = {"form": form, "operator": operator, "period": period, "figures": figures}
    if figures:
        context.update(_charts(figures))
    template = ("portal/_dashboard_body.html" if request.headers.get("HX-Request")
                else "portal/dashboard.html")
    return render(request, template, context, status=200 if period else 400)


def _charts(figures) -> dict:
    """What the charts draw (numbers as strings: exact, read by the page's script)."""
    currency = figures["currency"]
    return {
        "chart_daily": {
            "labels": [row["day"].isoformat() for row in figures["days"]],
            "kwh": [str(row["kwh"]) for row in figures["days"]],
            "revenue": [str(row["revenue_incl_vat"]) for row in figures["days"]],
            "kwhLabel": str(_("Energy (kWh)")),
            "revenueLabel": str(_("Revenue incl. VAT (%(currency)s)") % {"currency": currency}),
        },
        "chart_locations": {
            "labels": [row["location"] for row in figures["locations"]],
            "revenue": [str(row["revenue_incl_vat"]) for row in figures["locations"]],
            "revenueLabel": str(_("Revenue incl. VAT (%(currency)s)") % {"currency": currency}),
        },
    }


@require_POST
@portal_view
def operator_switch(request, operator):
    form = OperatorForm(request.POST, operators=portal_operators(request.user))
    if not form.is_valid():
        raise Http404  # not one of the user's operators (or no operator at all)
    operator_choose(request, form.cleaned_data["operator"])
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse_lazy("portal:dashboard")
    return redirect(target)


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("portal:dashboard")


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:login")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "portal/password_change.html"
    success_url = reverse_lazy("portal:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "portal/password_change_done.html"
