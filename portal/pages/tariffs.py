"""Tariffs: list, create, new version, assignments and the peak/off-peak builder.

Every write goes through the tariffs app's services (``tariffs.services``): a new version is a
draft built by ``tariff_version_draft_from_schedule`` (a week without peak hours is one set of
prices) and activated by ``tariff_version_activate`` in the same transaction; an assignment is
``tariff_assign`` with its model validation (docs/portal.md, "Tariffs").
"""

import zoneinfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tariffs.models import Tariff
from tariffs.ocpi_mapping import version_to_ocpi
from tariffs.services import (
    tariff_assign,
    tariff_create,
    tariff_version_activate,
    tariff_version_draft_from_schedule,
)

from ..access import may_write, portal_view, require_write
from ..tariff_builder import cell_name, empty_grid, grid_from_elements, schedule_arguments
from ..tariff_forms import (
    AssignForm,
    BuilderForm,
    SimplePricesForm,
    TariffCreateForm,
    operator_time_zone,
)
from ..tariff_selectors import (
    component_text,
    element_conditions,
    tariff_assignments,
    tariff_versions,
    tariffs_with_current_version,
    version_in_force,
)

PER_PAGE = 50
VERSIONS_PER_PAGE = 10


def _tariff(operator, pk) -> Tariff:
    return get_object_or_404(Tariff, pk=pk, operator=operator)


def _page(request, queryset, per_page: int, param: str = "page"):
    return Paginator(queryset, per_page).get_page(request.GET.get(param))


def _add_errors(form, exc: ValidationError) -> None:
    """A service's validation error on the form: per field when the form has it."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@portal_view
def tariff_list(request, operator):
    tariffs = tariffs_with_current_version(operator=operator, at=timezone.now())
    return render(request, "portal/tariffs/list.html", {
        "page_obj": _page(request, tariffs, PER_PAGE), "can_write": may_write(request.user,
                                                                                operator),
        "zone": operator_time_zone(operator)})


@portal_view
def tariff_create_view(request, operator):
    require_write(request, operator)
    form = TariffCreateForm(request.POST or None, operator=operator)
    if request.method == "POST" and form.is_valid():
        try:
            tariff = tariff_create(operator=operator, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Tariff %(code)s created: give it its prices with a "
                                        "new version or the peak/off-peak builder.")
                             % {"code": tariff.code})
            return redirect("portal:tariff", pk=tariff.pk)
    return render(request, "portal/tariffs/create.html", {"form": form},
                  status=400 if form.is_bound else 200)


@portal_view
def tariff_detail(request, operator, pk):
    tariff = _tariff(operator, pk)
    now = timezone.now()
    current = version_in_force(tariff, now)
    versions = _page(request, tariff_versions(tariff), VERSIONS_PER_PAGE)
    currency = str(tariff.currency)
    described = [{
        "version": version,
        "in_force": current is not None and version.pk == current.pk,
        "elements": [{"number": element.position + 1,
                      "conditions": element_conditions(element),
                      "components": [component_text(c, currency)
                                     for c in element.components.all()]}
                     for element in version.elements.all()],
    } for version in versions]
    return render(request, "portal/tariffs/detail.html", {
        "tariff": tariff, "current": current, "page_obj": versions, "versions": described,
        "assignments": _page(request, tariff_assignments(tariff), PER_PAGE, "apage"),
        "can_write": may_write(request.user, operator), "zone": operator_time_zone(operator)})


def _new_version(*, request, tariff, form, grid, note: str):
    """Build the draft and activate it, all or nothing; the form gets the service's errors."""
    data = form.cleaned_data
    try:
        with transaction.atomic():
            draft = tariff_version_draft_from_schedule(
                tariff=tariff, actor=request.user, note=data.get("note") or note,
                **schedule_arguments(grid, form.prices()))
            return tariff_version_activate(version=draft, actor=request.user,
                                           valid_from=data["valid_from"],
                                           valid_to=data.get("valid_to"))
    except ValidationError as exc:
        _add_errors(form, exc)
        return None


def _version_made(request, tariff, version):
    messages.success(request, _("Version %(number)s of %(code)s is active from %(start)s.") % {
        "number": version.number, "code": tariff.code,
        "start": timezone.localtime(version.valid_from,
                                    timezone=_zone(tariff)).strftime("%Y-%m-%d %H:%M %Z")})
    return redirect("portal:tariff", pk=tariff.pk)


def _zone(tariff):
    return zoneinfo.ZoneInfo(operator_time_zone(tariff.operator))


@portal_view
def tariff_version_new(request, operator, pk):
    require_write(request, operator)
    tariff = _tariff(operator, pk)
    zone = operator_time_zone(operator)
    form = SimplePricesForm(request.POST or None, zone=zone)
    if request.method == "POST" and form.is_valid():
        version = _new_version(request=request, tariff=tariff, form=form, grid=empty_grid(),
                               note=_("New prices from the portal"))
        if version is not None:
            return _version_made(request, tariff, version)
    return render(request, "portal/tariffs/version_new.html", {
        "tariff": tariff, "form": form, "zone": zone},
        status=400 if form.is_bound else 200)


def _builder_initial(tariff) -> dict:
    """Start from the grid of the version in force when the builder made it."""
    current = version_in_force(tariff, timezone.now())
    if current is None:
        return {}
    grid = grid_from_elements(version_to_ocpi(current).get("elements", []))
    if grid is None:
        return {}
    return {cell_name(day, hour): True for day, row in enumerate(grid)
            for hour, peak in enumerate(row) if peak}


@portal_view
def tariff_builder(request, operator, pk):
    require_write(request, operator)
    tariff = _tariff(operator, pk)
    zone = operator_time_zone(operator)
    form = BuilderForm(request.POST or None, zone=zone,
                       initial=None if request.method == "POST" else _builder_initial(tariff))
    if request.method == "POST" and form.is_valid():
        version = _new_version(request=request, tariff=tariff, form=form, grid=form.grid(),
                               note=_("Peak/off-peak prices from the portal's builder"))
        if version is not None:
            return _version_made(request, tariff, version)
    hours = [f"{hour:02d}" for hour in range(24)]
    return render(request, "portal/tariffs/builder.html", {
        "tariff": tariff, "form": form, "zone": zone, "hours": hours},
        status=400 if form.is_bound else 200)


@portal_view
def tariff_assign_view(request, operator, pk):
    require_write(request, operator)
    tariff = _tariff(operator, pk)
    zone = operator_time_zone(operator)
    form = AssignForm(request.POST or None, operator=operator, zone=zone)
    if request.method == "POST" and form.is_valid():
        try:
            assignment = tariff_assign(tariff=tariff, actor=request.user, **form.targets())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("%(code)s now applies at %(level)s %(target)s.") % {
                "code": tariff.code, "level": assignment.get_level_display(),
                "target": assignment.target_label})
            return redirect("portal:tariff", pk=tariff.pk)
    return render(request, "portal/tariffs/assign.html", {
        "tariff": tariff, "form": form, "zone": zone},
        status=400 if form.is_bound else 200)


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("tariffs/", tariff_list, name="tariffs"),
    path("tariffs/new/", tariff_create_view, name="tariff_create"),
    path("tariffs/<int:pk>/", tariff_detail, name="tariff"),
    path("tariffs/<int:pk>/versions/new/", tariff_version_new, name="tariff_version_new"),
    path("tariffs/<int:pk>/builder/", tariff_builder, name="tariff_builder"),
    path("tariffs/<int:pk>/assign/", tariff_assign_view, name="tariff_assign"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("tariffs", gettext_lazy("Tariffs"))]
