"""Rating: sessions → their price under the tariff that applies (docs/pricing.md, "Rating").

``sessions_rate`` prices imported sessions (and, when asked, sessions whose rating failed) in
batches. Per batch: the sessions are read and locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so two workers never rate the same session), the tariff assignments, versions, tariff groups and
index prices are loaded once, every session is priced by the pure engine, then the prices are
written in bulk and the statuses updated with one statement per outcome. No query runs per
session.

``sessions_rerate`` is the explicit re-rating: it also takes rated sessions, and refuses settled
and invoiced ones (their price is on a settlement or an invoice; a correction is a credit note).
A new price never overwrites the old one: the old row stays, no longer current.

Every call writes a ``RatingRun`` (who, why, counts, progress) that each price points to.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Case, F, TextField, Value, When
from django.utils import timezone

from emobility.db import copy_insert
from emobility.models import ChargingSession

from ..models import RatingRun, SessionPrice
from ..pricing.errors import PricingInputError
from ..pricing.retail import RetailError
from ..pricing.sessions import session_cdr
from ..selectors import (
    EngineVersion,
    NoTariff,
    Resolution,
    SessionPlace,
    customer_groups,
    engine_version,
    index_series,
    load_resolver,
    price_with,
)
from .retail import RetailBatch, RetailSession, month_of, retail_breakdown, retail_quote

logger = logging.getLogger(__name__)

Status = ChargingSession.Status

BATCH_SIZE = 2000
#: what ``sessions_rate`` takes; with ``retry_failed`` also sessions whose rating failed
RATEABLE = (Status.IMPORTED,)
RETRYABLE = (Status.IMPORTED, Status.RATING_FAILED)
#: what ``sessions_rerate`` takes
RERATEABLE = (Status.IMPORTED, Status.RATING_FAILED, Status.RATED)
REFUSED = {
    Status.SETTLED: "settled: promotions and credit were applied to its price; re-rating it "
                    "would change what the customer owes",
    Status.INVOICED: "invoiced: an issued invoice never changes; correct it with a credit note",
}

# Every status a rating may leave must be a move the status machine allows.
for _status in RERATEABLE:
    assert {Status.RATED, Status.RATING_FAILED} <= ChargingSession.TRANSITIONS[_status], _status

_COLUMNS = ("pk", "operator_id", "external_id", "status", "source", "evse_id",
            "evse__station_id", "evse__station__location_id", "evse__station__location__region",
            "evse__station__location__time_zone", "customer_id", "start", "end", "energy_kwh",
            "charging_seconds", "parking_seconds",
            # what retail pricing reads (16 on)
            "evse__power_type", "evse__max_power_kw", "evse__station__location__country",
            "evse__station__location__cpo_party", "cpo_cost_excl_vat",
            "cpo_cost_excl_vat_currency")


PRICE_FIELDS = ("session_id", "operator_id", "is_current", "rating_run_id", "tariff_version_id",
                "assignment_id", "level", "explanation", "total_excl_vat",
                "total_excl_vat_currency", "total_vat", "total_vat_currency", "total_incl_vat",
                "total_incl_vat_currency", "breakdown", "rated_at", "retail_plan_id",
                "retail_subscription_id", "cost_excl_vat")


@dataclass
class RatingOutcome:
    """What a rating call did: its run (with the counts), why sessions failed, and which were
    refused (re-rating only)."""

    run: RatingRun
    failures: dict[str, int] = field(default_factory=dict)   # reason → sessions
    refused: list[tuple[str, str]] = field(default_factory=list)  # (CDR id, why)


# --- the service ------------------------------------------------------------------------------

def sessions_rate(*, session_ids: Iterable[int] | None = None, operator_id: int | None = None,
                  retry_failed: bool = False, trigger: str = RatingRun.Trigger.TASK,
                  actor=None, reason: str = "", batch_size: int = BATCH_SIZE,
                  progress: Callable[[RatingRun], None] | None = None) -> RatingOutcome:
    """Rate imported sessions (with ``retry_failed`` also those whose rating failed): the given
    ``session_ids``, or all of ``operator_id``'s. Idempotent: a session already rated is left
    alone, so running it twice changes nothing."""
    statuses = RETRYABLE if retry_failed else RATEABLE
    return _run(session_ids=session_ids, operator_id=operator_id, statuses=statuses,
                trigger=trigger, actor=actor, reason=reason, batch_size=batch_size,
                progress=progress)


def sessions_rerate(*, session_ids: Iterable[int], actor=None, reason: str = "",
                    batch_size: int = BATCH_SIZE,
                    progress: Callable[[RatingRun], None] | None = None) -> RatingOutcome:
    """Price these sessions again with the tariffs in force now (for their start time).
    Settled and invoiced sessions are refused (listed in the outcome); the others get a new
    current price, the previous one is kept."""
    return _run(session_ids=session_ids, operator_id=None, statuses=RERATEABLE,
                trigger=RatingRun.Trigger.RERATE, actor=actor, reason=reason,
                batch_size=batch_size, progress=progress)


def _run(*, session_ids, operator_id, statuses, trigger, actor, reason, batch_size,
         progress) -> RatingOutcome:
    if session_ids is None and operator_id is None:
        raise ValueError("Give the sessions to rate or their operator.")
    queryset = ChargingSession.objects.all()
    if session_ids is not None:
        queryset = queryset.filter(pk__in=list(session_ids))
    if operator_id is not None:
        queryset = queryset.filter(operator_id=operator_id)
    if session_ids is None:  # all of an operator's sessions: only those this run may rate
        queryset = queryset.filter(status__in=statuses)
    candidates = list(queryset.order_by("pk").values_list("pk", "external_id", "status",
                                                           "operator_id"))
    ids = [pk for pk, _, status, _ in candidates if status in statuses]
    operators = {op for _, _, _, op in candidates}
    outcome = RatingOutcome(run=RatingRun.objects.create(
        operator_id=operator_id if operator_id is not None
        else (next(iter(operators)) if len(operators) == 1 else None),
        trigger=trigger, actor=actor, reason=reason[:300], sessions_total=len(candidates),
        started_at=timezone.now()))
    run = outcome.run
    if statuses is RERATEABLE:
        outcome.refused = [(external_id, REFUSED.get(status, status))
                           for _, external_id, status, _ in candidates
                           if status not in statuses]
    run.skipped = len(candidates) - len(ids)
    RatingRun.objects.filter(pk=run.pk).update(skipped=run.skipped)
    cache = _BatchCache()
    try:
        for begin in range(0, len(ids), batch_size):
            _rate_batch(ids[begin:begin + batch_size], statuses, run, outcome, cache)
            if progress is not None:
                progress(run)
    except Exception as exc:
        RatingRun.objects.filter(pk=run.pk).update(
            status=RatingRun.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    run.status = RatingRun.Status.DONE
    run.finished_at = timezone.now()
    RatingRun.objects.filter(pk=run.pk).update(status=run.status, finished_at=run.finished_at)
    return outcome


class _BatchCache:
    """What stays valid from one batch to the next: engine forms of versions, time zones."""

    def __init__(self) -> None:
        self.versions: dict[int, EngineVersion] = {}
        self.zones: dict[str, ZoneInfo] = {}

    def version(self, version) -> EngineVersion:
        found = self.versions.get(version.pk)
        if found is None:
            found = self.versions[version.pk] = engine_version(version)
        return found

    def zone(self, name: str) -> ZoneInfo:
        found = self.zones.get(name)
        if found is None:
            found = self.zones[name] = ZoneInfo(name)
        return found


@transaction.atomic
def _rate_batch(ids: list[int], statuses, run: RatingRun, outcome: RatingOutcome,
                cache: _BatchCache) -> None:
    rows = list(ChargingSession.objects.filter(pk__in=ids, status__in=statuses)
                .select_for_update(skip_locked=True, of=("self",))
                .values_list(*_COLUMNS))
    if not rows:
        run.skipped += len(ids)
        RatingRun.objects.filter(pk=run.pk).update(skipped=F("skipped") + len(ids))
        return
    with_periods = {s.value for s in (ChargingSession.Source.OCPI, ChargingSession.Source.API)}
    raws = dict(ChargingSession.objects.filter(
        pk__in=[r[0] for r in rows if r[4] in with_periods],
        raw__has_key="charging_periods").values_list("pk", "raw")) \
        if any(r[4] in with_periods for r in rows) else {}
    groups = customer_groups(r[10] for r in rows if r[10] is not None)
    resolver = load_resolver(operator_ids={r[1] for r in rows},
                             start_min=min(r[11] for r in rows),
                             start_max=max(r[11] for r in rows))

    retail = RetailBatch(operator_ids={r[1] for r in rows},
                         customer_ids={r[10] for r in rows if r[10] is not None},
                         start_min=min(r[11] for r in rows), start_max=max(r[11] for r in rows))

    # Pass 1: which tariff version prices each session (and which retail plan, if any).
    resolved: list[tuple[tuple, Resolution | None, str | None]] = []
    plans: dict[int, tuple] = {}  # session id → (RetailSession, plan, subscription)
    index_span: dict[int, list[datetime]] = {}

    def need_index(version) -> None:
        for index_id in cache.version(version).index_ids.values():
            span = index_span.setdefault(index_id, [row[11], row[12]])
            span[0], span[1] = min(span[0], row[11]), max(span[1], row[12])

    for row in rows:
        place = SessionPlace(operator_id=row[1], evse_id=row[5], station_id=row[6],
                             location_id=row[7], region=row[8],
                             group_id=groups.get(row[10]), start=row[11])
        if retail:
            session = _retail_session(row, groups.get(row[10]))
            chosen = retail.choose(session)
            if chosen is not None:
                plans[row[0]] = (session, *chosen)
                version = retail.version_at(chosen[0], row[11]) if chosen[0].tariff_id else None
                if version is not None:
                    need_index(version)
        if row[19]:  # a partner's charger: only a retail plan prices it, never our tariff
            resolved.append((row, None, None if row[0] in plans else (
                f"Roaming session at {row[19]}: no retail plan covers it (subscribe the "
                f"customer to one, or give the operator a default pay-as-you-go plan).")))
            continue
        try:
            resolution = resolver.resolve(place)
        except NoTariff as exc:
            resolved.append((row, None, None if row[0] in plans else str(exc)))
            continue
        resolved.append((row, resolution, None))
        need_index(resolution.version)
    series_by_id = {}
    for index_id, (begin, end) in index_span.items():
        series_by_id.update(index_series(index_ids=[index_id], start=begin, end=end))

    # Pass 2: price (retail sessions in the order they started, for their allowances).
    now = timezone.now()
    prices: list[tuple] = []
    rated: list[int] = []
    failed: dict[str, list[int]] = defaultdict(list)
    if plans:
        retail.lock_allowances({(sub.pk, month_of(session))
                                for session, plan, sub in plans.values()
                                if sub is not None and plan.rule == "allowance"})
        resolved.sort(key=lambda item: (item[0][11], item[0][0]))
    for row, resolution, failure in resolved:
        if row[0] in plans or resolution is not None:
            try:
                price = None if resolution is None else _price(
                    row, resolution, cache, series_by_id, raws.get(row[0]), run, now)
                if row[0] in plans:
                    price = _retail_price(row, price, plans[row[0]], retail, cache,
                                          series_by_id, raws.get(row[0]), run, now)
                prices.append(price)
                rated.append(row[0])
                continue
            except PricingInputError as exc:
                failure = f"Cannot price this session: {exc}"
            except RetailError as exc:
                failure = f"Retail plan {plans[row[0]][1].code}: {exc}"
            except Exception as exc:  # a bug must not lose the rest of the batch
                logger.exception("Rating session %s failed", row[2])
                failure = f"Internal error while pricing ({type(exc).__name__}): report it"
        failed[failure].append(row[0])
    if plans:
        retail.save_allowances()

    # Write: keep old prices as history, add the new ones, move the statuses.
    handled = [row[0] for row in rows]
    if any(row[3] != Status.IMPORTED for row in rows):
        SessionPrice.objects.filter(session_id__in=handled, is_current=True) \
            .update(is_current=False)
    copy_insert(SessionPrice, PRICE_FIELDS, prices)
    if rated:
        ChargingSession.objects.filter(pk__in=rated).update(
            status=Status.RATED, rating_failure_reason="", updated_at=now)
    if failed:
        # One statement whatever the number of reasons (most name the session's start).
        ChargingSession.objects.filter(pk__in=[pk for ids in failed.values() for pk in ids]) \
            .update(status=Status.RATING_FAILED, updated_at=now, rating_failure_reason=Case(
                *(When(pk__in=ids, then=Value(reason)) for reason, ids in failed.items()),
                output_field=TextField()))
    for reason, session_ids in failed.items():
        outcome.failures[reason] = outcome.failures.get(reason, 0) + len(session_ids)
    n_failed = sum(len(v) for v in failed.values())
    skipped = len(ids) - len(rows)  # changed or locked by someone else meanwhile
    run.rated += len(rated)
    run.failed += n_failed
    run.skipped += skipped
    RatingRun.objects.filter(pk=run.pk).update(
        rated=F("rated") + len(rated), failed=F("failed") + n_failed,
        skipped=F("skipped") + skipped)


def _price(row: tuple, resolution: Resolution, cache: _BatchCache, series_by_id: dict,
           raw: dict | None, run: RatingRun, now: datetime) -> tuple:
    """The ``SessionPrice`` row of one session, in the order of ``PRICE_FIELDS``."""
    (pk, operator_id, external_id, _status, _source, _evse, _station, _location, _region,
     zone, _customer, start, end, energy, charging_s, parking_s) = row[:16]
    cdr = session_cdr(start=start, end=end, energy_kwh=energy, charging_seconds=charging_s,
                      parking_seconds=parking_s, external_id=external_id, raw=raw)
    priced = price_with(cache.version(resolution.version), resolution, cdr, cache.zone(zone),
                        series_by_id)
    summary = priced.summary
    excl = Decimal(summary["total_cost"]["excl_vat"])
    incl = Decimal(summary["total_cost"]["incl_vat"])
    currency = summary["currency"]
    return (pk, operator_id, True, run.pk, resolution.version.pk, resolution.assignment.pk,
            resolution.level, resolution.explanation[:500], excl, currency, incl - excl,
            currency, incl, currency, summary, now, None, None, None)


def _retail_session(row: tuple, group_id: int | None) -> RetailSession:
    return RetailSession(
        pk=row[0], operator_id=row[1], customer_id=row[10], start=row[11], zone=row[9],
        energy_kwh=row[13], region=row[8] or "", power_type=row[16], max_kw=row[17],
        country=row[18] or "", roaming=bool(row[19]), cost_excl_vat=row[20],
        cost_currency=str(row[21]) if row[21] else None, group_id=group_id)


def _retail_price(row: tuple, own: tuple | None, chosen: tuple, retail: RetailBatch,
                  cache: _BatchCache, series_by_id: dict, raw: dict | None, run: RatingRun,
                  now: datetime) -> tuple:
    """The ``SessionPrice`` row of a session its retail plan prices (``own``: the row the
    charge point's tariff gave, if any)."""
    session, plan, sub = chosen
    own_price = None if own is None else (own[8], own[12])
    tariff_price = version = None
    if plan.rule == "tariff":
        version = retail.version_at(plan, session.start)
        if version is not None:
            cdr = session_cdr(start=row[11], end=row[12], energy_kwh=row[13],
                              charging_seconds=row[14], parking_seconds=row[15],
                              external_id=row[2], raw=raw)
            summary = price_with(cache.version(version), None, cdr, cache.zone(row[9]),
                                 series_by_id).summary
            tariff_price = (Decimal(summary["total_cost"]["excl_vat"]),
                            Decimal(summary["total_cost"]["incl_vat"]))
    quote = retail_quote(retail, session, plan, sub, own_price=own_price,
                         tariff_price=tariff_price)
    breakdown = retail_breakdown(quote, plan, sub, session)
    if own is not None:
        breakdown["retail"]["tariff_total"] = own[14]["total_cost"]
    currency = quote.currency
    who = f"subscribed plan {plan.name}" if sub else f"default plan {plan.name}"
    explanation = (f"Retail price by the {who} ({plan.get_rule_display().lower()}), "
                   f"{'roaming at ' + row[19] if session.roaming else 'own network'}.")
    return (row[0], row[1], True, run.pk, version.pk if version else (own[4] if own else None),
            own[5] if own else None, "retail", explanation[:500], quote.excl_vat, currency,
            quote.vat, currency, quote.incl_vat, currency, breakdown, now, plan.pk,
            sub.pk if sub else None, quote.cost_excl_vat)
