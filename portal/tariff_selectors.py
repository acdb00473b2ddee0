"""Reads of the portal's tariff pages, always scoped by operator."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from emobility.models import Operator
from tariffs.models import PriceComponent, Tariff, TariffAssignment, TariffElement, TariffVersion

from .tariff_builder import DAYS


def _in_force(at: datetime) -> Q:
    return (~Q(status=TariffVersion.Status.DRAFT) & Q(valid_from__lte=at)
            & (Q(valid_to__isnull=True) | Q(valid_to__gt=at)))


def version_in_force(tariff: Tariff, at: datetime) -> TariffVersion | None:
    """The version that prices sessions starting at ``at`` (as the resolver picks it)."""
    return (tariff.versions.filter(_in_force(at)).order_by("-valid_from").first())


def tariffs_with_current_version(*, operator: Operator, at: datetime) -> QuerySet[Tariff]:
    """The operator's tariffs with the number, start and end of the version in force at ``at``
    and their counts of versions and assignments: one query, whatever their number."""
    current = (TariffVersion.objects.filter(_in_force(at), tariff=OuterRef("pk"))
               .order_by("-valid_from"))
    versions = (TariffVersion.objects.filter(tariff=OuterRef("pk")).order_by()
                .values("tariff").annotate(n=Count("pk")).values("n"))
    assignments = (TariffAssignment.objects.filter(tariff=OuterRef("pk")).order_by()
                   .values("tariff").annotate(n=Count("pk")).values("n"))
    return (Tariff.objects.filter(operator=operator)
            .annotate(current_number=Subquery(current.values("number")[:1]),
                      current_from=Subquery(current.values("valid_from")[:1]),
                      current_to=Subquery(current.values("valid_to")[:1]),
                      version_count=Coalesce(Subquery(versions), 0),
                      assignment_count=Coalesce(Subquery(assignments), 0))
            .order_by("code", "pk"))


def tariff_versions(tariff: Tariff) -> QuerySet[TariffVersion]:
    """The tariff's versions, newest first, with their elements and components."""
    return (tariff.versions.order_by("-number")
            .prefetch_related("elements__components__price_index"))


def tariff_assignments(tariff: Tariff) -> QuerySet[TariffAssignment]:
    return (tariff.assignments.select_related("tariff_group", "evse", "station", "location",
                                              "operator")
            .order_by("-valid_from", "-pk"))


# --- what an element says, for a person -----------------------------------------------------

def _number(value: Decimal) -> str:
    """``0.450000`` → ``0.45``; ``2.000000`` → ``2``."""
    return format(value.normalize(), "f")


def _price(value: Decimal) -> str:
    """A unit price with its significant decimals, at least two: ``0.300000`` → ``0.30``."""
    value = value.normalize()
    if value.as_tuple().exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


def _days(days: list[str]) -> str:
    names = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    index = sorted(DAYS.index(d) for d in days if d in DAYS)
    if not index:
        return ""
    runs, start = [], index[0]
    for previous, current in zip(index, [*index[1:], None], strict=True):
        if current != previous + 1:
            runs.append(names[start] if start == previous
                        else f"{names[start]}–{names[previous]}")
            start = current
    return ", ".join(runs)


def element_conditions(element: TariffElement) -> str:
    """When the element applies, e.g. "Mon–Fri 17:00–21:00"; "always" without restrictions."""
    parts = []
    if element.days_of_week:
        parts.append(_days(element.days_of_week))
    if element.start_time or element.end_time:
        parts.append(f"{element.start_time or '00:00'}–{element.end_time or '24:00'}")
    if element.start_date or element.end_date:
        parts.append(_("dates %(start)s to %(end)s (excl.)") % {
            "start": element.start_date or "…", "end": element.end_date or "…"})
    bounds = [("min_kwh", "≥", "kWh"), ("max_kwh", "<", "kWh"), ("min_power", "≥", "kW"),
              ("max_power", "<", "kW"), ("min_current", "≥", "A"), ("max_current", "<", "A"),
              ("min_duration", "≥", "s"), ("max_duration", "<", "s")]
    for name, sign, unit in bounds:
        value = getattr(element, name)
        if value is not None:
            parts.append(f"{sign} {_number(Decimal(value))} {unit}")
    if element.reservation:
        parts.append(element.get_reservation_display())
    return " · ".join(parts) if parts else _("always")


UNIT = {PriceComponent.Type.ENERGY: "kWh", PriceComponent.Type.TIME: "h",
        PriceComponent.Type.PARKING_TIME: "h"}


def component_text(component: PriceComponent, currency: str) -> str:
    """E.g. "Energy (per kWh): EUR 0.45 / kWh, VAT 21 %"."""
    if component.price_index_id:
        price = _("index %(index)s") % {"index": component.price_index.code}
    else:
        price = f"{currency} {_price(component.price)}"
        if component.type in UNIT:
            price += f" / {UNIT[component.type]}"
    vat = (_("no VAT") if component.vat is None
           else _("VAT %(rate)s %%") % {"rate": _number(component.vat)})
    return f"{component.get_type_display()}: {price}, {vat}"
