"""Writes of the tariffs app: OCPI import, versions (draft → active → retired), assignments,
tariff groups. Every change is written to ``TariffAuditEntry``."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from emobility.models import Customer, Operator

from ..models import (
    CustomerTariffGroup,
    PriceComponent,
    Tariff,
    TariffAssignment,
    TariffAuditEntry,
    TariffElement,
    TariffGroup,
    TariffVersion,
)
from ..ocpi_mapping import ocpi_to_rows
from ..pricing.ocpi import PricingInputError, parse_tariff


class TariffError(ValidationError):
    """A tariff change that is not allowed (editing an active version, an invalid tariff...)."""


def _audit(*, version_or_tariff, action: str, actor=None, **details) -> None:
    if isinstance(version_or_tariff, TariffVersion):
        version, tariff = version_or_tariff, version_or_tariff.tariff
    else:
        version, tariff = None, version_or_tariff
    TariffAuditEntry.objects.create(operator_id=tariff.operator_id, tariff=tariff,
                                    version=version, actor=actor, action=action,
                                    details=details)


#: Deeper than this, an OCPI tariff is a mistake or an attack (OCPI's own nesting is 4 levels).
MAX_TARIFF_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests, counting no further than ``limit + 1`` (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, level)
            if level > limit:
                return level
            stack.extend((child, level + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def tariff_validate_ocpi(data: Any) -> None:
    """Raise ``TariffError`` naming what is wrong when ``data`` is not a valid OCPI tariff."""
    if not isinstance(data, dict):
        raise TariffError("An OCPI tariff is a JSON object.")
    if _depth(data, MAX_TARIFF_DEPTH) > MAX_TARIFF_DEPTH:
        raise TariffError(f"Invalid OCPI tariff: it nests more than {MAX_TARIFF_DEPTH} levels "
                          "deep.")
    try:
        parse_tariff(data)
    except PricingInputError as exc:
        raise TariffError(f"Invalid OCPI tariff: {exc}") from exc


def _write_elements(version: TariffVersion, elements: list[tuple[dict, list[dict]]]) -> None:
    for position, (fields, components) in enumerate(elements):
        element = TariffElement.objects.create(version=version, position=position, **fields)
        PriceComponent.objects.bulk_create(
            PriceComponent(element=element, position=n, **component)
            for n, component in enumerate(components))


@transaction.atomic
def tariff_import_ocpi(*, operator: Operator, data: dict[str, Any], actor=None,
                       name: str | None = None, activate: bool = True) -> TariffVersion:
    """Import an OCPI 2.2.1 tariff object as a new version of the operator's tariff with that id.

    The tariff is validated by the pricing engine's parser first, so what is stored can be priced.
    With ``activate`` the new version becomes the active one from its ``start_date_time`` (or
    now), closing the previous active version at that instant.
    """
    tariff_validate_ocpi(data)
    if data.get("currency") is None:
        raise TariffError("The tariff has no currency.")
    version_fields, elements = ocpi_to_rows(data)
    _check_storable(TariffVersion, version_fields, "")
    for i, (fields, components) in enumerate(elements):
        _check_storable(TariffElement, fields, f"elements[{i}].restrictions.")
        for j, component in enumerate(components):
            _check_storable(PriceComponent, component, f"elements[{i}].price_components[{j}].")
    tariff, created = Tariff.objects.select_for_update().get_or_create(
        operator=operator, code=data["id"],
        defaults={"name": name or _alt_text_name(data) or data["id"],
                  "currency": data["currency"], "type": data.get("type") or ""})
    if not created and str(tariff.currency) != data["currency"]:
        raise TariffError(f"Tariff {tariff.code} is priced in {tariff.currency}; a version in "
                          f"{data['currency']} must be a new tariff id.")
    if not created and (data.get("type") or "") != tariff.type:
        tariff.type = data.get("type") or ""
        tariff.save(update_fields=["type", "updated_at"])
    # A draft keeps the validity it came with; activating it uses it (docs: tariff versions).
    version = TariffVersion.objects.create(
        operator=operator, tariff=tariff, number=_next_number(tariff), created_by=actor,
        note="Imported from OCPI JSON", valid_from=_instant(data.get("start_date_time")),
        valid_to=_instant(data.get("end_date_time")), **version_fields)
    _write_elements(version, elements)
    _audit(version_or_tariff=version, action=TariffAuditEntry.Action.IMPORTED, actor=actor,
           elements=len(elements))
    if activate:
        version = tariff_version_activate(version=version, actor=actor)
    return version


def _check_storable(model, fields: dict[str, Any], path: str) -> None:
    """Refuse a number its column would round or cannot hold (a price is stored as given)."""
    for name, value in fields.items():
        field = model._meta.get_field(name)
        if value is None or not isinstance(field, models.DecimalField):
            continue
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            field.run_validators(number.normalize())
        except ValidationError as exc:
            raise TariffError(f"Invalid OCPI tariff: {path}{name}: {value} "
                              f"{' '.join(exc.messages)}") from exc


def _instant(value: str | None) -> datetime | None:
    """An OCPI DateTime; without a zone designator it is UTC (as the parser reads it)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _alt_text_name(data: dict) -> str:
    for text in data.get("tariff_alt_text") or []:
        if text.get("language") == "en" and text.get("text"):
            return str(text["text"])[:200]
    return ""


def _next_number(tariff: Tariff) -> int:
    last = tariff.versions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def tariff_create(*, operator: Operator, code: str, name: str, currency: str, actor=None,
                  type: str = "") -> Tariff:
    tariff = Tariff(operator=operator, code=code, name=name, currency=currency, type=type)
    tariff.full_clean()
    tariff.save()
    _audit(version_or_tariff=tariff, action=TariffAuditEntry.Action.CREATED, actor=actor)
    return tariff


@transaction.atomic
def tariff_version_create_draft(*, tariff: Tariff, actor=None, note: str = "",
                                from_version: TariffVersion | None = None) -> TariffVersion:
    """A new draft version, cloned from ``from_version`` (default: the latest version)."""
    tariff = Tariff.objects.select_for_update().get(pk=tariff.pk)
    source = from_version or tariff.versions.order_by("-number").first()
    draft = TariffVersion.objects.create(
        operator_id=tariff.operator_id, tariff=tariff, number=_next_number(tariff),
        created_by=actor, note=note or (f"Cloned from v{source.number}" if source else ""),
        **({} if source is None else {
            "min_price_excl_vat": source.min_price_excl_vat,
            "min_price_incl_vat": source.min_price_incl_vat,
            "max_price_excl_vat": source.max_price_excl_vat,
            "max_price_incl_vat": source.max_price_incl_vat,
            "tariff_alt_text": source.tariff_alt_text, "tariff_alt_url": source.tariff_alt_url,
            "energy_mix": source.energy_mix,
            # the OCPI fields kept as received, but a new version has its own last_updated
            "ocpi_extra": {k: v for k, v in (source.ocpi_extra or {}).items()
                           if k != "last_updated"},
        }))
    if source is not None:
        for element in source.elements.prefetch_related("components"):
            components = list(element.components.all())
            element.pk = None
            element.version = draft
            element.save()
            for component in components:
                component.pk = None
                component.element = element
            PriceComponent.objects.bulk_create(components)
    _audit(version_or_tariff=draft, action=TariffAuditEntry.Action.DRAFTED, actor=actor,
           cloned_from=source.number if source else None)
    return draft


def tariff_version_ensure_editable(version: TariffVersion) -> None:
    """The one guard every write to a version's prices goes through."""
    if not version.is_editable:
        raise TariffError(
            f"{version} is {version.get_status_display().lower()} and cannot change: "
            "create a new version instead.")


@transaction.atomic
def tariff_version_activate(*, version: TariffVersion, actor=None,
                            valid_from: datetime | None = None,
                            valid_to: datetime | None = None) -> TariffVersion:
    """Make a draft the active version from ``valid_from`` (default: the draft's own start, as
    imported, else now) until ``valid_to`` (default: the draft's own end, else open-ended).

    The previous active version is retired at that instant; its sessions keep it. A version must
    price something (at least one element) and be a valid OCPI tariff.
    """
    tariff = Tariff.objects.select_for_update().get(pk=version.tariff_id)
    version = TariffVersion.objects.select_for_update().get(pk=version.pk)
    tariff_version_ensure_editable(version)
    from ..ocpi_mapping import version_to_ocpi

    if not version.elements.exists():
        raise TariffError(f"{version} has no elements: nothing would be priced.")
    tariff_validate_ocpi(version_to_ocpi(version))
    now = timezone.now()
    valid_from = valid_from or version.valid_from or now
    if valid_to is None:
        valid_to = version.valid_to
    previous = list(tariff.versions.select_for_update().filter(
        status=TariffVersion.Status.ACTIVE).exclude(pk=version.pk))
    for old in previous:
        if old.valid_from >= valid_from:
            raise TariffError(
                f"{old} starts at {old.valid_from:%Y-%m-%d %H:%M}; the new version must start "
                "after it.")
    for old in previous:
        old.status = TariffVersion.Status.RETIRED
        if old.valid_to is None or old.valid_to > valid_from:
            old.valid_to = valid_from
        old.save(update_fields=["status", "valid_to", "updated_at"])
        _audit(version_or_tariff=old, action=TariffAuditEntry.Action.RETIRED, actor=actor,
               superseded_by=version.number, valid_to=valid_from.isoformat())
    version.status = TariffVersion.Status.ACTIVE
    version.valid_from = valid_from
    version.valid_to = valid_to
    version.activated_by = actor
    version.activated_at = now
    version.full_clean(exclude=["operator", "tariff", "created_by", "activated_by"])
    version.save(update_fields=["status", "valid_from", "valid_to", "activated_by",
                                "activated_at", "updated_at"])
    _audit(version_or_tariff=version, action=TariffAuditEntry.Action.ACTIVATED, actor=actor,
           valid_from=valid_from.isoformat(),
           valid_to=valid_to.isoformat() if valid_to else None)
    return version


@transaction.atomic
def tariff_assign(*, tariff: Tariff, level: str, valid_from: datetime, actor=None,
                  valid_to: datetime | None = None, tariff_group: TariffGroup | None = None,
                  evse=None, station=None, location=None, region: str = "") -> TariffAssignment:
    assignment = TariffAssignment(
        operator_id=tariff.operator_id, tariff=tariff, level=level, valid_from=valid_from,
        valid_to=valid_to, tariff_group=tariff_group, evse=evse, station=station,
        location=location, region=region, created_by=actor)
    assignment.full_clean()
    assignment.save()
    _audit(version_or_tariff=tariff, action=TariffAuditEntry.Action.ASSIGNED, actor=actor,
           assignment=assignment.pk, level=level, target=assignment.target_label,
           group=tariff_group.code if tariff_group else None, valid_from=valid_from.isoformat())
    return assignment


@transaction.atomic
def tariff_group_set(*, customer: Customer, group: TariffGroup | None) -> None:
    """Put a customer in a tariff group (``None``: in none)."""
    if group is None:
        CustomerTariffGroup.objects.filter(customer=customer).delete()
        return
    membership = CustomerTariffGroup(operator_id=customer.operator_id, customer=customer,
                                     group=group)
    membership.clean()
    CustomerTariffGroup.objects.update_or_create(
        customer=customer, defaults={"group": group, "operator_id": customer.operator_id})
