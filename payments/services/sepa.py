"""SEPA files (docs/payments-sepa.md): direct debits to collect (pain.008.001.02), payouts of
reimbursement statements (pain.001.001.03), the bank booking them (settle) and returns.

- A direct-debit file takes every scheduled direct debit of the operator due on or before the
  collection date (EUR, with an active mandate); its payments move to ``processing``. Each item
  carries its mandate's sequence (``FRST`` until a collection of the mandate was booked, then
  ``RCUR``).
- A payout file takes every issued reimbursement statement with something to pay out that is in
  no live file, to the agreement's payout IBAN.
- Settling a file (the bank booked it): its direct debits are paid (``payment_succeeded``) and
  their ``FRST`` mandates become ``RCUR``; its statements are paid out.
- A return (R-transaction) fails the payment with the bank's reason code: soft codes (AM04,
  insufficient funds, ...) are retried on the operator's schedule into a later file, hard codes
  (AC04, MD01, MD07, ...) are not. A return after the file was settled reopens the payment
  (``payment_reopen``): the invoice's paid amount goes down again.

A payment is *in a live file* when its latest item is in a file that is created or submitted and
it is still ``processing``; a return or a settlement ends that. Lock order: the operator's
payment settings (one file at a time per operator), the file, its payments in id order, then
their invoices (payment before invoice, as everywhere).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone
from sepaxml import SepaDD, SepaTransfer
from sepaxml.validation import ValidationError as SepaSchemaError
from text_unidecode import unidecode

from emobility.auth import acting_user
from invoicing.models import Invoice
from invoicing.services import InvoiceError, invoice_apply_payment, statement_paid_out

from ..gateways.base import is_hard_decline
from ..models import Payment, PaymentMethod, PaymentSettings, SepaBatch, SepaBatchItem
from ..validation import (
    SEPA_ID_RE,
    clean_bic,
    clean_iban,
    compact_creditor_id,
    creditor_id_problem,
)
from .collection import PaymentError, payment_failed, payment_succeeded
from .events import event_record

ZERO = Decimal(0)
#: SEPA files are in euros
CURRENCY = "EUR"
DIRECT_DEBIT_SCHEMA = "pain.008.001.02"
TRANSFER_SCHEMA = "pain.001.001.03"
Status = Payment.Status
BatchStatus = SepaBatch.Status
Kind = SepaBatch.Kind
#: a file the bank has not booked yet (its items still hold their payments)
LIVE = (BatchStatus.CREATED, BatchStatus.SUBMITTED)
#: statements that can be paid out
PAYABLE = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE)

#: the Latin character set every SEPA bank accepts (EPC guidance): anything else becomes a space
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/?:().,'+ -]")
_REASON_CODE = re.compile(r"^[A-Z0-9]{4}$")

#: the usual SEPA return and reject reasons (ISO 20022 ExternalReturnReason1Code)
RETURN_REASONS = {
    "AC01": "Account number incorrect",
    "AC04": "Account closed",
    "AC06": "Account blocked",
    "AG01": "Direct debits not allowed on this account",
    "AG02": "Operation code not valid",
    "AM04": "Insufficient funds",
    "AM05": "Duplicate collection",
    "BE05": "Creditor unknown to the debtor's bank",
    "FF01": "File format not valid",
    "MD01": "No mandate",
    "MD02": "Mandate data missing or wrong",
    "MD06": "Refund requested by the debtor",
    "MD07": "Debtor deceased",
    "MS02": "Refused by the debtor",
    "MS03": "Reason not given by the bank",
    "RC01": "BIC not valid",
    "SL01": "Creditor blocked by the debtor's bank",
}
#: returns after which the payment is not collected again by direct debit, on top of the hard
#: declines of every channel (``payments.gateways.base.HARD_DECLINES``): the debtor said no, or
#: the same collection would fail again (wrong account or bank details), or it would be
#: collected twice (a duplicate).
NOT_RETRIED_RETURNS = frozenset({"AC01", "AG01", "AM05", "BE05", "MD02", "MD06", "MS02",
                                 "RC01"})


# --- checks and text ------------------------------------------------------------------------------

def sepa_text(value: str, limit: int) -> str:
    """``value`` in the SEPA character set (accents dropped, other signs become spaces), at most
    ``limit`` characters."""
    text = _NOT_SEPA.sub(" ", unidecode(value or ""))
    return " ".join(text.split())[:limit].strip()


def return_reason(code: str) -> str:
    return RETURN_REASONS.get(code, "Returned by the bank")


def return_is_hard(code: str) -> bool:
    """Whether a return stops the automatic retries."""
    return is_hard_decline(code) or code in NOT_RETRIED_RETURNS


def _cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise PaymentError(f"EUR {amount} is not a whole number of cents.")
    return int(cents)


@dataclass(frozen=True)
class Creditor:
    """The operator's side of a file: the creditor of direct debits, the debtor of payouts."""

    name: str
    iban: str
    bic: str
    creditor_id: str


def sepa_creditor(*, operator, direct_debit: bool,
                  config: PaymentSettings | None = None) -> Creditor:
    """The operator's SEPA details from its payment settings, checked (IBAN and BIC with
    schwifty, the creditor identifier's check digits), or a ``PaymentError`` that names every
    missing or wrong field."""
    config = config or PaymentSettings.objects.filter(operator=operator).first()
    if config is None:
        raise PaymentError(f"No SEPA file for {operator}: it has no payment settings yet. Give "
                           f"its SEPA creditor identifier, IBAN and BIC there first.")
    problems = []
    name = sepa_text(config.sepa_creditor_name or operator.name, 70)
    if not name:
        problems.append("the creditor name is missing")
    creditor_id = compact_creditor_id(config.sepa_creditor_id)
    if direct_debit:
        if not creditor_id:
            problems.append("the SEPA creditor identifier is missing")
        elif creditor_id_problem(creditor_id):
            problems.append(f"the SEPA creditor identifier {config.sepa_creditor_id} is not "
                            f"valid (wrong format or check digits)")

    def checked(value: str, clean, what: str) -> str:
        if not value:
            problems.append(f"the {what} of the collection account is missing")
            return ""
        try:
            return clean(value)
        except ValidationError as error:
            problems.append(" ".join(error.messages))
            return ""

    iban = checked(config.sepa_iban, clean_iban, "IBAN")
    bic = checked(config.sepa_bic, clean_bic, "BIC")
    if problems:
        raise PaymentError(f"No SEPA file for {operator}: " + "; ".join(problems)
                           + ". Correct the operator's payment settings.")
    return Creditor(name=name, iban=iban, bic=bic, creditor_id=creditor_id)


# --- the XML --------------------------------------------------------------------------------------

class _OurHeader:
    """sepaxml writes a random message id and the server's local time into the group header;
    a file of ours carries its batch's message id and the time it was made."""

    def __init__(self, config: dict, *, message_id: str, created_at: datetime):
        self._message_id = message_id
        self._created_at = created_at
        # clean=False: names and texts are made SEPA-safe here, so the items store exactly
        # what the file says.
        super().__init__(config, clean=False)

    def _create_header(self):
        self.msg_id = self._message_id
        super()._create_header()
        header = self._xml.find(f"{self.root_el}/GrpHdr")
        header.find("CreDtTm").text = f"{timezone.localtime(self._created_at):%Y-%m-%dT%H:%M:%S}"


class _DirectDebitFile(_OurHeader, SepaDD):
    pass


class _TransferFile(_OurHeader, SepaTransfer):
    pass


def _export(document) -> bytes:
    """The file, checked against its XSD by sepaxml."""
    try:
        return document.export(validate=True)
    except SepaSchemaError as error:
        cause = error.__cause__
        detail = getattr(cause, "reason", None) or str(cause or error)
        raise PaymentError(f"The SEPA file did not pass the {document.schema} schema check: "
                           f"{detail}") from error


def _message_id(prefix: str, operator, now: datetime) -> str:
    stamp = f"{timezone.localtime(now):%Y%m%d%H%M%S}"
    return f"{prefix}{operator.pk}-{stamp}-{secrets.token_hex(4).upper()}"[:35]


def _not_past(day: date, what: str, now: datetime) -> None:
    if day < timezone.localdate(now):
        raise PaymentError(f"The {what} date {day:%Y-%m-%d} has passed.")


def _party_locked(operator, *, direct_debit: bool) -> Creditor:
    """The operator's side of a new file, its payment settings locked: one file at a time per
    operator, so two files made at once never take the same payment or statement."""
    found = PaymentSettings.objects.select_for_update().filter(operator=operator).first()
    if found is None:
        raise PaymentError(f"No SEPA file for {operator}: it has no payment settings yet. Give "
                           f"its SEPA creditor identifier, IBAN and BIC there first.")
    return sepa_creditor(operator=operator, config=found, direct_debit=direct_debit)


def _store(batch: SepaBatch, items: list[SepaBatchItem], xml: bytes) -> None:
    SepaBatchItem.objects.bulk_create(items)
    batch.count = len(items)
    batch.total = sum((item.amount for item in items), ZERO)
    batch.file.save(f"{batch.message_id}.xml", ContentFile(xml), save=False)
    batch.save(update_fields=["count", "total", "file", "updated_at"])


def _batch_make(*, operator, kind: str, party: Creditor, day: date, rows: list, item_for,
                entry_for, named, refused: str, now: datetime, actor):
    """What making either file takes, under the operator's settings lock: the batch, one item
    per row (``item_for(batch, row)``; a row that cannot go in is left out with why), the XML
    of the operator's side (``party``) and one ``entry_for(item)`` per item, checked and
    stored. ``(batch, items, skipped)``; when no row can go in, a ``PaymentError`` that starts
    with ``refused`` and names each row (``named(row)``) and why."""
    debits = kind == Kind.DIRECT_DEBIT
    message_id = _message_id("DD" if debits else "CT", operator, now)
    batch = SepaBatch.objects.create(
        operator=operator, kind=kind, message_id=message_id, execution_date=day,
        currency=CURRENCY, created_by=acting_user(actor))
    items, skipped = [], []
    for row in rows:
        try:
            items.append(item_for(batch, row))
        except PaymentError as error:
            skipped.append((row, str(error)))
    if not items:
        raise PaymentError(f"{refused}: " + "; ".join(
            f"{named(row)}: {why}" for row, why in skipped) + ".")
    config = {"name": party.name, "IBAN": party.iban, "BIC": party.bic, "batch": True,
              "currency": CURRENCY}
    if debits:
        config["creditor_id"] = party.creditor_id
    document = (_DirectDebitFile if debits else _TransferFile)(
        config, message_id=message_id, created_at=now)
    for item in items:
        document.add_payment(entry_for(item))
    _store(batch, items, _export(document))
    return batch, items, skipped


# --- direct debits (pain.008) ---------------------------------------------------------------------

def _remittance(payment: Payment) -> str:
    if payment.invoice_id:
        part = (f" part {payment.instalment} of {payment.instalments}"
                if payment.instalments > 1 else "")
        text = f"Invoice {payment.invoice.number}{part}"
    else:
        text = f"{payment.get_purpose_display()} payment {payment.pk}"
    return sepa_text(text, 140)


def _debit_item(batch: SepaBatch, payment: Payment) -> SepaBatchItem:
    """The file's line for one payment, from its mandate (checked again: a file with a bad
    mandate in it is refused by the bank as a whole)."""
    method = payment.method
    try:
        iban = clean_iban(method.iban)
        bic = clean_bic(method.bic)
    except ValidationError as error:
        raise PaymentError(" ".join(error.messages)) from error
    if not SEPA_ID_RE.match(method.mandate_reference or "") or not method.mandate_signed_on:
        raise PaymentError("the mandate reference or the date it was signed is missing")
    name = sepa_text(method.account_holder or (payment.customer.name if payment.customer_id
                                               else ""), 70)
    if not name:
        raise PaymentError("the account holder's name is missing")
    sequence = (PaymentMethod.Sequence.RECURRING
                if method.sequence == PaymentMethod.Sequence.RECURRING
                else PaymentMethod.Sequence.FIRST)
    return SepaBatchItem(
        batch=batch, payment=payment, end_to_end_id=f"DD{batch.pk}-{payment.pk}"[:35],
        name=name, iban=iban, bic=bic, amount=payment.amount,
        mandate_reference=method.mandate_reference, mandate_signed_on=method.mandate_signed_on,
        sequence=sequence, remittance=_remittance(payment))


def sepa_direct_debit_batch_create(*, operator, collection_date: date, actor=None,
                                   now: datetime | None = None) -> SepaBatch:
    """A pain.008 file of every scheduled direct debit of ``operator`` due on or before
    ``collection_date`` (EUR, with an active mandate), stored on the new batch; its payments
    move to ``processing``. Refused (``PaymentError``) when the operator's creditor details are
    missing or wrong, when the date has passed, or when nothing is due."""
    now = now or timezone.now()
    _not_past(collection_date, "collection", now)
    with transaction.atomic():
        creditor = _party_locked(operator, direct_debit=True)
        payments = list(
            Payment.objects.select_for_update(of=("self",))
            .filter(operator=operator, channel=Payment.Channel.DIRECT_DEBIT,
                    status=Status.SCHEDULED, due_on__lte=collection_date, currency=CURRENCY,
                    method__kind=PaymentMethod.Kind.SEPA_DD,
                    method__status=PaymentMethod.Status.ACTIVE)
            .select_related("method", "invoice", "customer").order_by("due_on", "pk"))
        if not payments:
            raise PaymentError(f"{operator} has no direct debit (EUR, with an active mandate) "
                               f"to collect on or before {collection_date:%Y-%m-%d}.")

        def entry(item: SepaBatchItem) -> dict:
            fields = {"name": item.name, "IBAN": item.iban, "amount": _cents(item.amount),
                      "type": item.sequence, "collection_date": collection_date,
                      "mandate_id": item.mandate_reference,
                      "mandate_date": item.mandate_signed_on, "description": item.remittance,
                      "endtoend_id": item.end_to_end_id, "currency": CURRENCY}
            if item.bic:
                fields["BIC"] = item.bic
            return fields

        batch, items, skipped = _batch_make(
            operator=operator, kind=Kind.DIRECT_DEBIT, party=creditor, day=collection_date,
            rows=payments, item_for=_debit_item, entry_for=entry,
            named=lambda payment: f"payment #{payment.pk}",
            refused="No direct debit could go into a file", now=now, actor=actor)
        message_id = batch.message_id
        Payment.objects.filter(pk__in=[item.payment_id for item in items]).update(
            status=Status.PROCESSING, updated_at=now)
        for item in items:
            event_record(kind="sepa_file", payment=item.payment, actor=actor, at=now, message=(
                f"In SEPA direct debit file {message_id} ({item.sequence}), to be collected "
                f"on {collection_date:%Y-%m-%d}; end-to-end id {item.end_to_end_id}."),
                data={"batch": batch.pk, "end_to_end_id": item.end_to_end_id,
                      "sequence": item.sequence})
        for payment, why in skipped:
            event_record(kind="sepa_skipped", payment=payment, actor=actor, at=now,
                         message=f"Left out of SEPA file {message_id}: {why}.")
    return batch


# --- payouts (pain.001) ---------------------------------------------------------------------------

def _payout_item(batch: SepaBatch, statement: Invoice) -> SepaBatchItem:
    agreement = statement.agreement
    if agreement is None or not agreement.payout_iban:
        raise PaymentError("its agreement has no payout IBAN")
    try:
        iban = clean_iban(agreement.payout_iban)
    except ValidationError as error:
        raise PaymentError(" ".join(error.messages)) from error
    name = sepa_text((statement.buyer or {}).get("name") or statement.customer.name, 70)
    if not name:
        raise PaymentError("the owner's name is missing")
    return SepaBatchItem(
        batch=batch, statement=statement, end_to_end_id=f"CT{batch.pk}-{statement.pk}"[:35],
        name=name, iban=iban, amount=statement.amount_due - statement.amount_paid,
        remittance=sepa_text(f"Reimbursement statement {statement.number}", 140))


def sepa_payout_batch_create(*, operator, execution_date: date, actor=None,
                             now: datetime | None = None) -> SepaBatch:
    """A pain.001 file paying out every issued reimbursement statement of ``operator`` with
    something left to pay (EUR, in no live file) to its agreement's payout IBAN. Statements
    whose IBAN is missing or wrong are left out (their history says why)."""
    now = now or timezone.now()
    _not_past(execution_date, "execution", now)
    with transaction.atomic():
        debtor = _party_locked(operator, direct_debit=False)
        statements = list(
            Invoice.objects.select_for_update(of=("self",))
            .filter(operator=operator, kind=Invoice.Kind.STATEMENT, status__in=PAYABLE,
                    currency=CURRENCY, amount_due__gt=0, amount_paid__lt=F("amount_due"))
            .exclude(Exists(SepaBatchItem.objects.filter(statement=OuterRef("pk"),
                                                         batch__status__in=LIVE)))
            .select_related("agreement", "customer").order_by("issue_date", "pk"))
        if not statements:
            raise PaymentError(f"{operator} has no issued reimbursement statement (EUR) left to "
                               f"pay out.")
        batch, items, skipped = _batch_make(
            operator=operator, kind=Kind.CREDIT_TRANSFER, party=debtor, day=execution_date,
            rows=statements, item_for=_payout_item, entry_for=lambda item: {
                "name": item.name, "IBAN": item.iban, "amount": _cents(item.amount),
                "execution_date": execution_date, "description": item.remittance,
                "endtoend_id": item.end_to_end_id, "currency": CURRENCY},
            named=lambda statement: statement.number,
            refused="No statement could be paid out", now=now, actor=actor)
        message_id = batch.message_id
        for item in items:
            event_record(kind="payout_file", invoice=item.statement,
                         customer=item.statement.customer, actor=actor, at=now, message=(
                             f"Payout of {CURRENCY} {item.amount} to {item.iban} in SEPA file "
                             f"{message_id}, on {execution_date:%Y-%m-%d}."),
                         data={"batch": batch.pk, "end_to_end_id": item.end_to_end_id})
        for statement, why in skipped:
            event_record(kind="payout_skipped", invoice=statement, customer=statement.customer,
                         actor=actor, at=now,
                         message=f"Left out of SEPA payout file {message_id}: {why}.")
    return batch


# --- the file's life ------------------------------------------------------------------------------

def _latest_items(payment_ids) -> dict[int, int]:
    """Each payment's latest SEPA item (a payment returned and collected again has several)."""
    return dict(SepaBatchItem.objects.filter(payment_id__in=list(payment_ids))
                .values("payment_id").annotate(last=Max("pk")).values_list("payment_id", "last"))


def sepa_batch_submit(*, batch: SepaBatch, actor=None, now: datetime | None = None) -> SepaBatch:
    """The file was handed to the bank (uploaded in its portal): nothing changes but the
    status. Marking a submitted file again changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = SepaBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status == BatchStatus.SUBMITTED:
            return locked
        if locked.status != BatchStatus.CREATED:
            raise PaymentError(f"The file {locked.message_id} is "
                               f"{locked.get_status_display().lower()}: it cannot be submitted.")
        SepaBatch.objects.filter(pk=locked.pk).update(status=BatchStatus.SUBMITTED,
                                                      updated_at=now)
        event_record(kind="sepa_submitted", operator_id=locked.operator_id, actor=actor, at=now,
                     message=f"SEPA file {locked.message_id} submitted to the bank.",
                     data={"batch": locked.pk})
        locked.refresh_from_db()
        return locked


def sepa_batch_settle(*, batch: SepaBatch, now: datetime | None = None,
                      actor=None) -> SepaBatch:
    """The bank booked the file. Direct debits: every item whose payment is still in this file
    (``processing``, not returned, not put in a later file) is paid, and a mandate collected
    for the first time becomes ``RCUR``. Payouts: every statement is paid out. Settling a
    settled file changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = SepaBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status == BatchStatus.SETTLED:
            return locked
        if locked.status == BatchStatus.CANCELLED:
            raise PaymentError(f"The file {locked.message_id} was cancelled.")
        items = list(locked.items.order_by("pk"))
        if locked.kind == Kind.DIRECT_DEBIT:
            _settle_debits(locked, items, now, actor)
        else:
            for item in items:
                try:
                    statement = statement_paid_out(statement=item.statement,
                                                   today=timezone.localdate(now))
                except InvoiceError as error:
                    raise PaymentError(f"{item.statement}: {error} Nothing was settled.") \
                        from error
                event_record(kind="paid_out", invoice=statement, customer=statement.customer,
                             actor=actor, at=now, message=(
                                 f"Paid out: {CURRENCY} {item.amount} to {item.iban} (SEPA file "
                                 f"{locked.message_id})."), data={"batch": locked.pk})
        SepaBatch.objects.filter(pk=locked.pk).update(status=BatchStatus.SETTLED, updated_at=now)
        locked.refresh_from_db()
        return locked


def _settle_debits(batch: SepaBatch, items: list[SepaBatchItem], now: datetime, actor) -> None:
    latest = _latest_items(item.payment_id for item in items)
    for item in items:
        payment = Payment.objects.select_for_update().get(pk=item.payment_id)
        if payment.status != Status.PROCESSING or latest.get(payment.pk) != item.pk:
            continue  # returned before the booking, or collected again in a later file
        try:
            payment_succeeded(payment=payment, now=now, reference=item.end_to_end_id,
                              actor=actor)
        except (InvoiceError, PaymentError) as error:
            raise PaymentError(f"Payment #{payment.pk}: {error} Nothing was settled.") from error
        if item.sequence == PaymentMethod.Sequence.FIRST and payment.method_id:
            PaymentMethod.objects.filter(
                pk=payment.method_id, sequence=PaymentMethod.Sequence.FIRST).update(
                sequence=PaymentMethod.Sequence.RECURRING, updated_at=now)


def sepa_batch_cancel(*, batch: SepaBatch, reason: str, actor=None,
                      now: datetime | None = None) -> SepaBatch:
    """The file will not be booked (the bank refused it, or it was never sent): its payments
    are scheduled again for the next file, its statements can go into another payout file."""
    now = now or timezone.now()
    if not reason.strip():
        raise PaymentError("Say why the file is cancelled.")
    with transaction.atomic():
        locked = SepaBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status == BatchStatus.CANCELLED:
            return locked
        if locked.status not in LIVE:
            raise PaymentError(f"The file {locked.message_id} is settled: it cannot be "
                               f"cancelled (record returns instead).")
        items = list(locked.items.order_by("pk"))
        latest = _latest_items(item.payment_id for item in items if item.payment_id)
        for item in items:
            if not item.payment_id or latest.get(item.payment_id) != item.pk:
                continue
            moved = Payment.objects.filter(pk=item.payment_id, status=Status.PROCESSING).update(
                status=Status.SCHEDULED, updated_at=now)
            if moved:
                event_record(kind="sepa_cancelled", payment=item.payment, actor=actor, at=now,
                             message=(f"SEPA file {locked.message_id} cancelled "
                                      f"({reason.strip()[:200]}): scheduled for the next file."))
        SepaBatch.objects.filter(pk=locked.pk).update(status=BatchStatus.CANCELLED,
                                                      updated_at=now)
        event_record(kind="sepa_cancelled", operator_id=locked.operator_id, actor=actor, at=now,
                     message=f"SEPA file {locked.message_id} cancelled: {reason.strip()[:300]}",
                     data={"batch": locked.pk})
        locked.refresh_from_db()
        return locked


# --- returns --------------------------------------------------------------------------------------

def payment_reopen(*, payment: Payment, code: str, message: str, hard: bool | None = None,
                   now: datetime | None = None, actor=None) -> Payment:
    """Undo a paid payment whose money went back (a direct debit returned after the bank
    booked it): it is open again and failed with ``code`` (retried on the schedule unless the
    code is hard), and its invoice's paid amount goes down by the payment's amount, so the
    invoice is partly paid, issued or overdue again. Refused for a payment with refunds (the
    money went back twice: finance sorts it out) and for wallet top-ups."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Status.SUCCEEDED:
            raise PaymentError(f"Payment #{locked.pk} is {locked.get_status_display().lower()}, "
                               f"not paid: there is nothing to undo.")
        if locked.amount_refunded:
            raise PaymentError(f"Payment #{locked.pk} was refunded in part ({locked.currency} "
                               f"{locked.amount_refunded}): handle its return by hand.")
        if locked.top_up_id:
            raise PaymentError("A wallet top-up is not reopened: handle its return by hand.")
        try:
            with transaction.atomic():
                Payment.objects.filter(pk=locked.pk).update(status=Status.PROCESSING,
                                                            paid_at=None, updated_at=now)
        except IntegrityError as error:
            raise PaymentError(f"Another payment of the same invoice part is open: payment "
                               f"#{locked.pk} cannot be reopened beside it.") from error
        event_record(kind="reopened", payment=locked, actor=actor, at=now, message=(
            f"The {locked.currency} {locked.amount} paid went back ({message}): the payment is "
            f"open again."), data={"code": code, "amount": str(locked.amount)})
        if locked.invoice_id and locked.invoice.status != Invoice.Status.DRAFT:
            try:
                invoice_apply_payment(invoice=locked.invoice, amount=-locked.amount,
                                      today=timezone.localdate(now))
            except InvoiceError as error:
                raise PaymentError(str(error)) from error
        return payment_failed(payment=locked, code=code, message=message, hard=hard, now=now,
                              actor=actor)


def sepa_return(*, payment: Payment, reason_code: str, now: datetime | None = None,
                actor=None, item: SepaBatchItem | None = None, message: str = "") -> Payment:
    """The bank returned (or rejected) the direct debit of ``payment`` with ``reason_code``
    (an R-transaction). The payment fails with that code: soft codes are retried on the
    operator's schedule (``payments_retry_due`` puts it back into the next file), hard codes
    are not. Returned after the file was settled, the payment is reopened first
    (``payment_reopen``). A first collection returned leaves the mandate at ``FRST``. The same
    return twice changes nothing."""
    now = now or timezone.now()
    code = (reason_code or "").strip().upper()
    if not _REASON_CODE.match(code):
        raise PaymentError("A SEPA reason code is four letters or digits, e.g. AM04 or AC04.")
    text = f"SEPA return {code}: {return_reason(code)}" + (
        f" ({message.strip()[:150]})" if message.strip() else "")
    hard = return_is_hard(code)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.channel != Payment.Channel.DIRECT_DEBIT:
            raise PaymentError(f"Payment #{locked.pk} is not a direct debit.")
        latest = locked.sepa_items.select_related("batch").order_by("-pk").first()
        if latest is None:
            raise PaymentError(f"Payment #{locked.pk} was never in a SEPA file.")
        if item is not None and item.pk != latest.pk:
            raise PaymentError(f"Payment #{locked.pk} was collected again in a later file "
                               f"({latest.batch.message_id}): a return of the earlier file "
                               f"changes nothing now.")
        if latest.batch.status == BatchStatus.CANCELLED:
            raise PaymentError(f"The file {latest.batch.message_id} was cancelled: nothing "
                               f"was collected to return.")
        data = {"code": code, "hard": hard, "batch": latest.batch_id,
                "end_to_end_id": latest.end_to_end_id}
        if locked.status == Status.PROCESSING:
            event_record(kind="sepa_returned", payment=locked, actor=actor, at=now,
                         message=f"{text} (file {latest.batch.message_id}).", data=data)
            result = payment_failed(payment=locked, code=code, message=text, hard=hard, now=now,
                                    actor=actor)
        elif locked.status == Status.SUCCEEDED:
            event_record(kind="sepa_returned", payment=locked, actor=actor, at=now, message=(
                f"{text} after the bank booked file {latest.batch.message_id}."),
                data={**data, "after_settlement": True})
            result = payment_reopen(payment=locked, code=code, message=text, hard=hard, now=now,
                                    actor=actor)
        elif locked.status == Status.FAILED and locked.failure_code == code:
            return locked  # recorded already
        else:
            raise PaymentError(f"Payment #{locked.pk} is {locked.get_status_display().lower()}: "
                               f"there is no collection to return.")
        _mandate_after_return(latest, locked)
        return result


def _mandate_after_return(item: SepaBatchItem, payment: Payment) -> None:
    """A returned first collection does not count: the mandate's next collection is a first
    one again (unless another collection of it went through)."""
    if item.sequence != PaymentMethod.Sequence.FIRST or not payment.method_id:
        return
    collected = Payment.objects.filter(
        method_id=payment.method_id, channel=Payment.Channel.DIRECT_DEBIT,
        status=Status.SUCCEEDED).exclude(pk=payment.pk).exists()
    if not collected:
        PaymentMethod.objects.filter(pk=payment.method_id,
                                     sequence=PaymentMethod.Sequence.RECURRING).update(
            sequence=PaymentMethod.Sequence.FIRST, updated_at=timezone.now())
