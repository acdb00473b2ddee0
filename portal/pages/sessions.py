"""Sessions: a filtered list, a session with its rating breakdown, CSV export.

The filters are a GET form (``SessionFilterForm``); invalid filters (a bad date, another
operator's row) answer 400 with the form's errors and no rows. The export streams the same
filtered list as CSV: times in the location's zone and in UTC, amounts as exact decimal text,
every text cell made spreadsheet-safe.
"""

import csv
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from emobility.models import ChargingSession
from emobility.money import round_money
from emobility.spreadsheet import spreadsheet_safe

from .. import session_selectors as selectors
from ..access import portal_view

PAGE_SIZE = 50
#: the export refuses more rows than this (narrow the filters): a bound on one request's time
EXPORT_MAX_ROWS = 200_000
_MINUTE = Decimal("0.01")


def _filtered(request, operator):
    """The filter form on the request's query and, when valid, the filtered sessions."""
    form = selectors.SessionFilterForm(request.GET, operator=operator)
    if not form.is_valid():
        return form, None
    return form, selectors.sessions(operator=operator, filters=form.cleaned_data)


@require_safe
@portal_view
def session_list(request, operator):
    form, rows = _filtered(request, operator)
    form.narrow_choices()
    page_obj = Paginator(rows if rows is not None else ChargingSession.objects.none(),
                         PAGE_SIZE).get_page(request.GET.get("page"))
    page_obj.object_list = selectors.with_local_times(page_obj.object_list)
    cdr_import = form.cleaned_data.get("cdr_import") if rows is not None else None
    return render(request, "portal/sessions/list.html", {
        "operator": operator, "form": form, "page_obj": page_obj, "valid": rows is not None,
        "cdr_import": cdr_import, "export_query": request.GET.copy(),
    }, status=200 if rows is not None else 400)


@require_safe
@portal_view
def session_detail(request, operator, pk):
    session = get_object_or_404(
        ChargingSession.objects.select_related("evse__station__location", "customer", "token",
                                               "cdr_import"),
        pk=pk, operator=operator)
    zone = ZoneInfo(session.evse.station.location.time_zone)
    prices = selectors.session_prices(operator=operator, session=session)
    current = next((p for p in prices if p.is_current), None)
    breakdown = current.breakdown if current else {}
    return render(request, "portal/sessions/detail.html", {
        "operator": operator, "session": session, "zone": zone.key,
        "local_start": session.start.astimezone(zone), "local_end": session.end.astimezone(zone),
        "current": current, "history": prices,
        "dimensions": selectors.price_dimensions(breakdown),
        "lines": selectors.price_lines(breakdown),
        "retail": breakdown.get("retail"), "price_limit": breakdown.get("price_limit"),
        "settlement": selectors.session_settlement(operator=operator, session=session),
        "charging_minutes": _minutes(session.charging_seconds),
        "parking_minutes": _minutes(session.parking_seconds),
    })


class _Echo:
    """A file-like object whose ``write`` hands the line back (``csv.writer`` into a
    streaming response)."""

    def write(self, value):
        return value


def _minutes(seconds: int) -> Decimal:
    return (Decimal(seconds) / 60).quantize(_MINUTE)


def _text(value) -> str:
    return spreadsheet_safe("" if value is None else str(value))


def _amount(value, currency) -> str:
    return "" if value is None else format(round_money(Decimal(value), currency), "f")


def _iso(moment, zone=None) -> str:
    moment = moment.astimezone(zone) if zone else moment.astimezone(ZoneInfo("UTC"))
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if zone is None else text


def _csv_lines(rows):
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    zones: dict[str, ZoneInfo] = {}
    yield "\ufeff"  # so that spreadsheets read the file as UTF-8
    yield writer.writerow(selectors.EXPORT_COLUMNS)
    for (cdr_id, start, end, zone_name, location_code, location, station, evse_id,
         customer_reference, customer_name, token_uid, contract_id, energy, charging, parking,
         status, tariff, version, plan, excl, vat, incl, currency, import_id) in rows:
        zone = zones.get(zone_name) or zones.setdefault(zone_name, ZoneInfo(zone_name))
        yield writer.writerow([
            _text(cdr_id), _iso(start, zone), _iso(end, zone), _text(zone_name), _iso(start),
            _iso(end), _text(location_code), _text(location), _text(station), _text(evse_id),
            _text(customer_reference), _text(customer_name), _text(token_uid),
            _text(contract_id), format(energy, "f"), format(_minutes(charging), "f"),
            format(_minutes(parking), "f"), status,
            _text(tariff if tariff is not None else plan), "" if version is None else version,
            _amount(excl, currency), _amount(vat, currency), _amount(incl, currency),
            _text(currency), "" if import_id is None else import_id])


@require_safe
@portal_view
def session_export(request, operator):
    """The filtered list as CSV, streamed (every matching session, not one page)."""
    form, rows = _filtered(request, operator)
    if rows is None:
        form.narrow_choices()
        return render(request, "portal/sessions/export_refused.html", {
            "operator": operator, "form": form, "reason": _("Please correct the filters."),
        }, status=400)
    count = rows.count()
    if count > EXPORT_MAX_ROWS:
        form.narrow_choices()
        return render(request, "portal/sessions/export_refused.html", {
            "operator": operator, "form": form,
            "reason": _("%(count)d sessions match: the export takes at most %(max)d. Choose a "
                        "shorter period or more filters.") % {"count": count,
                                                              "max": EXPORT_MAX_ROWS},
        }, status=400)
    response = StreamingHttpResponse(_csv_lines(selectors.export_rows(rows)),
                                     content_type="text/csv; charset=utf-8")
    name = f"sessions-{operator.code}-{timezone.now():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("sessions/", session_list, name="sessions"),
    path("sessions/export.csv", session_export, name="sessions_export"),
    path("sessions/<int:pk>/", session_detail, name="session"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("sessions", gettext_lazy("Sessions"))]
