"""CDRs pushed to the back office (the API's ``POST /api/v1/cdrs``; later the OCPI CDRs module):
validated by the one validator, with the same rules as a file, and stored exactly once.

``cdrs_receive`` takes the records a door made of what it received (``ocpi.records_from_ocpi``)
and answers, for each in order, what became of it:

- ``imported``: stored as a new session (its id is given);
- ``duplicate``: the same CDR was received before (earlier in the same list, or stored); nothing
  changes, the stored session's id is given;
- ``conflict``: a CDR with the same id but other content was received before; the stored one is
  kept (a correction is a new CDR id), the stored session's id is given;
- ``refused``: the CDR is wrong; the field and the reason say why.

A list works like a file: within it, the first CDR of an id counts; an identical later one is a
duplicate, a different one a conflict. Everything that is stored, is stored in one transaction.
The caller rates the imported sessions (the tariffs app's job; this module does not import it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import ChargingSession, Operator
from . import ocpi
from .store import store
from .validation import CdrValidator, Record, RowError, ValidCdr

IMPORTED, DUPLICATE, CONFLICT, REFUSED = "imported", "duplicate", "conflict", "refused"
#: what a CDR may answer: accepted (stored now or before) or not
ACCEPTED = (IMPORTED, DUPLICATE)

#: ``check(cdr)``: a further check of a valid CDR, ``(field, reason)`` when it must be refused
Check = Callable[[ValidCdr], "tuple[str, str] | None"]


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one CDR. ``index``: its place in the list received (``None``: it came
    alone); ``field``: the CDR's field a refusal or conflict is about."""

    index: int | None
    cdr_id: str
    status: str
    session_id: int | None = None
    field: str = ""
    value: str = ""
    reason: str = ""


def _refused(error: RowError, *, translate: bool) -> Received:
    field = ocpi.ocpi_field(error.column) if translate else error.column
    reason = ocpi.ocpi_reason(error.reason) if translate else error.reason
    return Received(index=error.row, cdr_id=error.external_id, status=REFUSED, field=field,
                    value=error.value, reason=reason)


def cdrs_receive(*, operator: Operator, records: Sequence[Record | RowError], source: str,
                 now: datetime | None = None, check: Check | None = None) -> list[Received]:
    """Validate ``records`` (a door's ``RowError``s are refusals already) for ``operator``, store
    the valid ones as sessions from ``source`` (``ChargingSession.Source.API`` or ``OCPI``), and
    say what became of each, in order. ``check`` (optional) runs on each valid CDR before it is
    stored: the interface passes what another app must verify (e.g. that the rating engine can
    read its charging periods)."""
    now = now or timezone.now()
    validator = CdrValidator(operator_id=operator.pk, currency=operator.default_currency,
                             now=now, naive_times="UTC")
    validated = iter(validator.validate([r for r in records if isinstance(r, Record)]))
    outcomes: list[Received | ValidCdr] = []
    for record in records:
        if isinstance(record, RowError):  # the door refused it: named as in the CDR already
            outcomes.append(_refused(record, translate=False))
            continue
        outcome = next(validated)
        if isinstance(outcome, RowError):
            outcomes.append(_refused(outcome, translate=True))
            continue
        problem = check(outcome) if check is not None else None
        if problem is not None:
            field, reason = problem
            outcomes.append(Received(index=outcome.row, cdr_id=outcome.external_id,
                                     status=REFUSED, field=field, reason=reason))
            continue
        outcomes.append(outcome)

    valid = [o for o in outcomes if isinstance(o, ValidCdr)]
    if not valid:
        return outcomes  # type: ignore[return-value]  (every one is a Received)
    index = {id(cdr): cdr.row for cdr in valid}
    first: dict[str, ValidCdr] = {}
    for cdr in valid:
        first.setdefault(cdr.external_id, cdr)
        cdr.row = None  # a pushed CDR has no row in a file
    with transaction.atomic():
        stored = store(operator_id=operator.pk, cdrs=valid, source=source, cdr_import_id=None,
                       now=now)
        sessions = dict(ChargingSession.objects.filter(
            operator=operator, external_id__in=list(first)).values_list("external_id", "pk"))
    status = {id(cdr): IMPORTED for cdr in stored.imported}
    status.update((id(cdr), DUPLICATE) for cdr in stored.duplicates)
    status.update((id(cdr), CONFLICT) for cdr, _ in stored.conflicts)
    for cdr in valid:
        cdr.row = index[id(cdr)]
    return [o if isinstance(o, Received) else _stored(o, status, first, sessions)
            for o in outcomes]


def _stored(cdr: ValidCdr, statuses: dict[int, str], first: dict[str, ValidCdr],
            sessions: dict[str, int]) -> Received:
    session_id = sessions.get(cdr.external_id)
    earlier = first[cdr.external_id]
    in_list = earlier is not cdr
    status = statuses[id(cdr)]
    if status == CONFLICT and in_list and cdr.fingerprint == earlier.fingerprint:
        # the same as an earlier CDR of the list that conflicts with the stored one
        in_list = False
    if status == IMPORTED:
        return Received(index=cdr.row, cdr_id=cdr.external_id, status=status,
                        session_id=session_id)
    if status == DUPLICATE:
        reason = (f"the same CDR as index {earlier.row} of this list" if in_list
                  else "this CDR was received before; the stored session is unchanged")
        return Received(index=cdr.row, cdr_id=cdr.external_id, status=status,
                        session_id=session_id, reason=reason)
    reason = (f"id: the CDR at index {earlier.row} of this list has this id with other "
              f"content; the first one counts (send a correction as a new CDR id)" if in_list
              else "id: a CDR with this id was received before with other content; the "
                   "stored one is kept (send a correction as a new CDR id)")
    return Received(index=cdr.row, cdr_id=cdr.external_id, status=status,
                    session_id=session_id, field="id", value=cdr.external_id, reason=reason)
