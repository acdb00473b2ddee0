"""Bank statements (docs/payments-sepa.md, "Bank statements"): a CSV export or a camt.053 file
read, every credit line stored once, and matched to what customers owe.

Reading: at most ``MAX_BYTES``; CSV in UTF-8 (with or without BOM), ``;`` or ``,``, decimal comma
or point; camt.053 parsed with lxml without entities, DTDs or network access (a file with a
DOCTYPE is refused). A file that cannot be read is refused as a whole (``BankImportError``) and
nothing is stored. Only credits are imported (CSV: positive amounts; camt: booked ``CRDT``
entries that are not reversals).

Matching a line: an ISO 11649 structured reference (``RF`` + valid check digits) in the
remittance → the open payment that carries it, or the invoice whose reference it is; else an
invoice number in the remittance → that invoice's open payments. The amount pays them in order
(instalment by instalment): exactly → ``matched``; less → ``partial`` (``payment_receive``: the
part received becomes a paid payment of its own, the open one is reduced to what is left); more
→ ``overpaid`` (the rest recorded as ``excess``). Nothing found, another currency, nothing left
open, or a collection in progress → ``unmatched`` with a note, for finance to resolve by hand
(``bank_transaction_resolve``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.db import IntegrityError
from django.db.models import Q
from django.db.models.functions import Upper
from django.db.transaction import atomic
from django.utils import timezone
from django.utils.text import get_valid_filename
from lxml import etree

from emobility.auth import acting_user
from emobility.money import round_money
from invoicing.models import Invoice
from invoicing.selectors import rf_reference
from invoicing.services import InvoiceError, invoice_apply_payment

from ..models import BankStatement, BankTransaction, Payment
from .collection import PaymentError, payment_succeeded
from .events import event_record

ZERO = Decimal(0)
#: the largest statement file accepted
MAX_BYTES = 20 * 1024 * 1024
#: the most lines one file may hold
MAX_LINES = 100_000
Line = BankTransaction.Status
#: open payments a bank transfer can pay (not those being collected by a provider or a file)
PAYABLE = (Payment.Status.SCHEDULED, Payment.Status.FAILED)
IN_FLIGHT = (Payment.Status.PROCESSING, Payment.Status.AUTHORIZED)
#: purposes whose payment can be received in parts (a session's payment is one per session)
SPLITTABLE = (Payment.Purpose.INVOICE, Payment.Purpose.INSTALMENT)


class BankImportError(PaymentError):
    """A statement file that cannot be imported; the message says why."""


@dataclass(frozen=True)
class StatementLine:
    """One credit of a statement file, as read."""

    row: int
    booking_date: date
    amount: Decimal
    currency: str
    counterparty: str = ""
    counterparty_iban: str = ""
    remittance: str = ""
    entry_reference: str = ""


# --- reading the file -----------------------------------------------------------------------------

def _read_bytes(file) -> bytes:
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        size = getattr(file, "size", None)
        if size is not None and size > MAX_BYTES:
            raise BankImportError(_too_big())
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise BankImportError(_too_big())
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise BankImportError("The file is empty.")
    return data


def _too_big() -> str:
    return (f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: export a shorter period "
            f"from the bank.")


def read_statement(data: bytes, file_name: str = "") -> tuple[str, list[StatementLine]]:
    """The format (``csv`` or ``camt053``) and the credit lines of a statement file, or a
    ``BankImportError`` that says what is wrong with it."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") or file_name.lower().endswith(".xml"):
        return BankStatement.Format.CAMT053, read_camt053(data)
    return BankStatement.Format.CSV, read_csv(data)


def parse_amount(text: str) -> Decimal:
    """An amount written with a decimal comma or point, optionally with thousands separators
    (``1.234,56``, ``1,234.56``, ``-12,5``). A lone separator followed by three digits
    (``1.234``) is refused as ambiguous."""
    raw = (text or "").strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    if not re.fullmatch(r"[+-]?[0-9][0-9.,]*", raw):
        raise ValueError(f"{text!r} is not an amount")
    sign = "-" if raw.startswith("-") else ""
    body = raw.lstrip("+-")
    dot, comma = body.rfind("."), body.rfind(",")
    if dot >= 0 and comma >= 0:
        decimal_mark = "." if dot > comma else ","
        grouping = "," if decimal_mark == "." else "."
        whole, fraction = body.rsplit(decimal_mark, 1)
        if not re.fullmatch(rf"[0-9]{{1,3}}(\{grouping}[0-9]{{3}})*", whole) or not fraction:
            raise ValueError(f"{text!r} is not an amount")
        whole = whole.replace(grouping, "")
    elif dot >= 0 or comma >= 0:
        mark = "." if dot >= 0 else ","
        parts = body.split(mark)
        if len(parts) == 2 and 1 <= len(parts[1]) <= 2:
            whole, fraction = parts
        elif len(parts) == 2 and len(parts[1]) == 3:
            raise ValueError(f"{text!r} is ambiguous (thousands or decimals?): write it with "
                             f"its cents, e.g. 1234,00 or 1.234,00")
        elif len(parts) > 2 and 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:]):
            whole, fraction = "".join(parts), "0"
        else:
            raise ValueError(f"{text!r} is not an amount")
    else:
        whole, fraction = body, "0"
    return Decimal(f"{sign}{whole}.{fraction}")


_DATE_DMY = re.compile(r"^([0-9]{1,2})[-./]([0-9]{1,2})[-./]([0-9]{4})$")


def parse_date(text: str) -> date:
    """``2026-11-20``, ``20-11-2026``, ``20.11.2026``, ``20/11/2026`` or ``20261120``."""
    value = (text or "").strip()
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            return date.fromisoformat(value)
        if re.fullmatch(r"[0-9]{8}", value):
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        found = _DATE_DMY.match(value)
        if found:
            return date(int(found[3]), int(found[2]), int(found[1]))
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a date (e.g. 2026-11-20 or 20.11.2026)")


def _money(amount: Decimal, currency: str, where: str) -> Decimal:
    if not amount.is_finite():
        raise BankImportError(f"{where}: the amount is not a number.")
    if round_money(amount, currency) != amount:
        raise BankImportError(f"{where}: {currency} {amount} has more decimals than {currency} "
                              f"has.")
    if abs(amount) >= Decimal("1e12"):
        raise BankImportError(f"{where}: the amount {amount} is too large.")
    return round_money(amount, currency)


def _currency(value: str, where: str) -> str:
    currency = (value or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BankImportError(f"{where}: {value!r} is not a currency code (e.g. EUR).")
    return currency


def _iban(value: str) -> str:
    return re.sub(r"\s+", "", value or "").upper()[:34]


#: CSV columns (headers compared in lower case, spaces and dashes as underscores) and the other
#: names the same column may have
COLUMNS = {
    "booking_date": ("booking_date", "date", "booked_on", "value_date"),
    "amount": ("amount",),
    "currency": ("currency", "ccy"),
    "counterparty_name": ("counterparty_name", "counterparty", "name"),
    "counterparty_iban": ("counterparty_iban", "iban", "counterparty_account"),
    "remittance": ("remittance", "description", "remittance_information"),
    "entry_reference": ("entry_reference", "bank_reference", "entry_ref"),
}
REQUIRED_COLUMNS = ("booking_date", "amount", "currency", "counterparty_name",
                    "counterparty_iban", "remittance")


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (name or "").strip().lower()).strip("_")


def read_csv(data: bytes) -> list[StatementLine]:
    """The credit lines of a CSV statement (debits, negative amounts, are left out). Every
    cell is text: nothing in it is ever evaluated."""
    if b"\x00" in data:
        raise BankImportError("This is not a CSV text file (it holds binary data). Export the "
                              "statement as CSV (UTF-8) or camt.053 XML.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BankImportError(f"The file is not UTF-8 text (byte {error.start} cannot be "
                              f"read): export it as CSV in UTF-8 or as camt.053 XML.") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    lines: list[StatementLine] = []
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise BankImportError("The file is empty.")
        where = _columns(header)
        width = len(header)
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != width:
                raise BankImportError(f"Line {number}: {len(row)} cells where the header has "
                                      f"{width}.")
            line = _csv_line(row, where, number)
            if line is None:
                continue
            lines.append(line)
            if len(lines) > MAX_LINES:
                raise BankImportError(f"The file has more than {MAX_LINES:,} credit lines: "
                                      f"export a shorter period.")
    except csv.Error as error:
        raise BankImportError(f"Line {reader.line_num}: the CSV cannot be read ({error}).") \
            from None
    return lines


def _columns(header: list[str]) -> dict[str, int]:
    keys = [_header_key(name) for name in header]
    where = {}
    for column, names in COLUMNS.items():
        for name in names:
            if name in keys:
                where[column] = keys.index(name)
                break
    missing = [column for column in REQUIRED_COLUMNS if column not in where]
    if missing:
        raise BankImportError(
            "The CSV header lacks the column(s) " + ", ".join(missing) + ". Expected: "
            + ", ".join(REQUIRED_COLUMNS) + " and optionally entry_reference.")
    return where


def _csv_line(row: list[str], where: dict[str, int], number: int) -> StatementLine | None:
    def cell(column: str) -> str:
        index = where.get(column)
        return row[index].strip() if index is not None else ""

    at = f"Line {number}"
    try:
        booked = parse_date(cell("booking_date"))
        amount = parse_amount(cell("amount"))
    except (ValueError, InvalidOperation) as error:
        raise BankImportError(f"{at}: {error}.") from None
    currency = _currency(cell("currency"), at)
    amount = _money(amount, currency, at)
    if amount <= 0:
        return None  # a debit, or nothing: not a payment to us
    return StatementLine(
        row=number, booking_date=booked, amount=amount, currency=currency,
        counterparty=cell("counterparty_name")[:140],
        counterparty_iban=_iban(cell("counterparty_iban")),
        remittance=cell("remittance"), entry_reference=cell("entry_reference"))


_CAMT = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(0[2-9]|1[0-9])$")
_DANGEROUS_XML = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _xml_parser() -> etree.XMLParser:
    """No entity is expanded, no DTD loaded, nothing fetched from the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_pis=True,
                           collect_ids=False)


def read_camt053(data: bytes) -> list[StatementLine]:
    """The booked credit entries of a camt.053 statement (version 02, later versions read the
    same fields). A document with a DOCTYPE (a DTD or entities) is refused unread."""
    if _DANGEROUS_XML.search(data):
        raise BankImportError("The XML declares a DOCTYPE or entities: refused (a bank "
                              "statement has none).")
    try:
        root = etree.fromstring(data, _xml_parser())  # noqa: S320 - entities, DTDs, network off
    except etree.XMLSyntaxError as error:
        raise BankImportError(f"The XML cannot be read: {error}.") from None
    if root.getroottree().docinfo.doctype:
        raise BankImportError("The XML declares a DOCTYPE: refused (a bank statement has none).")
    namespace = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "Document" or not _CAMT.match(namespace):
        raise BankImportError("This XML is not a camt.053 bank statement (expected a Document "
                              "in the camt.053.001.02 namespace).")
    ns = {"c": namespace}
    lines: list[StatementLine] = []
    number = 0
    for statement in root.iterfind("c:BkToCstmrStmt/c:Stmt", ns):
        for entry in statement.iterfind("c:Ntry", ns):
            number += 1
            lines.extend(_camt_entry(entry, ns, number))
            if len(lines) > MAX_LINES:
                raise BankImportError(f"The file has more than {MAX_LINES:,} credit lines: "
                                      f"export a shorter period.")
    return lines


def _text(element, path: str, ns: dict) -> str:
    found = element.find(path, ns) if element is not None else None
    return " ".join((found.text or "").split()) if found is not None else ""


def _camt_amount(element, where: str) -> tuple[Decimal, str]:
    if element is None or not re.fullmatch(r"[0-9]{1,15}(\.[0-9]{1,5})?",
                                           (element.text or "").strip()):
        raise BankImportError(f"{where}: the amount is missing or not a number.")
    currency = _currency(element.get("Ccy", ""), where)
    return _money(Decimal(element.text.strip()), currency, where), currency


def _camt_entry(entry, ns: dict, number: int) -> list[StatementLine]:
    where = f"Entry {number}"
    indicator = _text(entry, "c:CdtDbtInd", ns)
    if indicator not in ("CRDT", "DBIT"):
        raise BankImportError(f"{where}: CdtDbtInd is {indicator or 'missing'} (CRDT or DBIT).")
    status = _text(entry, "c:Sts", ns) or _text(entry, "c:Sts/c:Cd", ns)
    if indicator != "CRDT" or _text(entry, "c:RvslInd", ns).lower() == "true" or (
            status and status != "BOOK"):
        return []
    amount, currency = _camt_amount(entry.find("c:Amt", ns), where)
    booked_text = _text(entry, "c:BookgDt/c:Dt", ns) or _text(entry, "c:BookgDt/c:DtTm",
                                                              ns)[:10]
    try:
        booked = date.fromisoformat(booked_text)
    except ValueError:
        raise BankImportError(f"{where}: the booking date is missing or wrong.") from None
    reference = _text(entry, "c:AcctSvcrRef", ns) or _text(entry, "c:NtryRef", ns)
    details = entry.findall("c:NtryDtls/c:TxDtls", ns)
    if len(details) <= 1:
        return [_camt_line(number, booked, amount, currency, reference,
                           details[0] if details else None, ns, entry)]
    lines = []
    for index, detail in enumerate(details, start=1):
        part = (detail.find("c:AmtDtls/c:TxAmt/c:Amt", ns)
                if detail.find("c:AmtDtls/c:TxAmt/c:Amt", ns) is not None
                else detail.find("c:Amt", ns))
        part_amount, part_currency = _camt_amount(part, f"{where}, transaction {index}")
        part_reference = _text(detail, "c:Refs/c:AcctSvcrRef", ns) or (
            f"{reference}/{index}" if reference else "")
        lines.append(_camt_line(number, booked, part_amount, part_currency, part_reference,
                                detail, ns, entry))
    return lines


def _camt_line(number, booked, amount, currency, reference, detail, ns, entry) -> StatementLine:
    remittance, counterparty, iban = [], "", ""
    if detail is not None:
        remittance += [" ".join((node.text or "").split())
                       for node in detail.iterfind("c:RmtInf/c:Ustrd", ns)]
        remittance += [" ".join((node.text or "").split())
                       for node in detail.iterfind("c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref", ns)]
        if not any(remittance):
            remittance.append(_text(detail, "c:AddtlTxInf", ns))
        name = detail.find("c:RltdPties/c:Dbtr//c:Nm", ns)
        counterparty = " ".join((name.text or "").split()) if name is not None else ""
        iban = _text(detail, "c:RltdPties/c:DbtrAcct/c:Id/c:IBAN", ns)
    if not any(remittance):
        remittance.append(_text(entry, "c:AddtlNtryInf", ns))
    return StatementLine(row=number, booking_date=booked, amount=amount, currency=currency,
                         counterparty=counterparty[:140], counterparty_iban=_iban(iban),
                         remittance=" ".join(part for part in remittance if part),
                         entry_reference=reference)


# --- fingerprints ---------------------------------------------------------------------------------

def _fingerprints(lines: list[StatementLine]) -> list[str]:
    """The bank's entry reference, else a digest of the line's content and how many identical
    lines came before it in the file (two equal transfers on one day are two lines)."""
    seen: dict[str, int] = {}
    result = []
    for line in lines:
        reference = line.entry_reference.strip()
        if reference:
            result.append(f"ref:{reference}" if len(reference) <= 60 else
                          "ref:" + hashlib.sha256(reference.encode()).hexdigest()[:60])
            continue
        content = "\x1f".join([line.booking_date.isoformat(), str(line.amount), line.currency,
                               line.counterparty_iban, line.counterparty, line.remittance])
        seen[content] = seen.get(content, 0) + 1
        result.append(hashlib.sha256(f"{content}\x1e{seen[content]}".encode()).hexdigest())
    return result


# --- references -----------------------------------------------------------------------------------

def rf_valid(reference: str) -> bool:
    """ISO 11649: ``RF``, two check digits, 1 to 21 letters or digits; the check digits
    right."""
    compact = re.sub(r"\s+", "", reference or "").upper()
    if not re.fullmatch(r"RF[0-9]{2}[A-Z0-9]{1,21}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def rf_candidates(text: str) -> tuple[list[str], list[str]]:
    """The ISO 11649 references written in ``text`` (with or without spaces in groups): those
    whose check digits are right, longest first, and those that look like one but are not."""
    upper = (text or "").upper()
    valid, invalid = [], []
    for found in re.finditer(r"(?<![A-Z0-9])RF[0-9]{2}", upper):
        body, position, cuts = "", found.end(), set()
        while position < len(upper) and len(body) < 21:
            char = upper[position]
            if char.isascii() and char.isalnum():
                body += char
            elif not (char == " " and position + 1 < len(upper)
                      and upper[position + 1].isascii() and upper[position + 1].isalnum()):
                break
            else:
                cuts.add(len(body))  # a group ends here: the reference may end here too
            position += 1
        cuts.add(len(body))
        # Only whole groups: a shorter run of characters cut anywhere would have the right check
        # digits by chance one time in 97 (a wrong reference taken for another one).
        prefixes = [found.group() + body[:size] for size in sorted(cuts, reverse=True) if size]
        good = [ref for ref in prefixes if rf_valid(ref)]
        if good:
            valid.extend(ref for ref in good if ref not in valid)
        elif prefixes:
            invalid.append(prefixes[0])
    return valid, invalid


def _invoice_numbers(text: str) -> list[str]:
    tokens = re.findall(r"[A-Z0-9][A-Z0-9/._-]{2,39}", (text or "").upper())
    return sorted({token.rstrip("/._-") for token in tokens})


# --- matching -------------------------------------------------------------------------------------

@dataclass
class Match:
    status: str
    payment: Payment | None = None
    invoice: Invoice | None = None
    excess: Decimal = ZERO
    note: str = ""


def _payable(invoice: Invoice) -> list[Payment]:
    return list(invoice.payments.filter(status__in=PAYABLE)
                .order_by("instalment", "due_on", "pk"))


def _nothing_open(invoice: Invoice) -> str:
    if invoice.payments.filter(status__in=IN_FLIGHT).exists():
        return (f"A collection of invoice {invoice.number} is in progress (direct debit or "
                f"card): check it before booking this transfer.")
    if invoice.status == Invoice.Status.PAID:
        return f"Invoice {invoice.number} is paid already: refund this or keep it as credit."
    if invoice.status == Invoice.Status.VOID:
        return f"Invoice {invoice.number} was credited (void): refund this."
    return f"Invoice {invoice.number} has no open payment to match."


def _find(operator, line) -> Match:
    """What a credit line pays, found by its remittance (nothing changes here)."""
    notes = []
    valid, invalid = rf_candidates(line.remittance)
    if invalid and not valid:
        notes.append(f"{', '.join(invalid)}: not a structured reference (wrong check digits).")
    if valid:
        payments = {p.reference: p for p in Payment.objects.filter(
            operator=operator, reference__in=valid).select_related("invoice")}
        for reference in valid:
            payment = payments.get(reference)
            if payment is None:
                continue
            if str(payment.currency) != line.currency:
                return Match(Line.UNMATCHED, invoice=payment.invoice, note=(
                    f"The transfer is in {line.currency}, payment #{payment.pk} ({reference}) "
                    f"in {payment.currency}: not matched."))
            if payment.status in PAYABLE:
                return Match(Line.MATCHED, payment=payment, invoice=payment.invoice,
                             note=f"By reference {reference}.")
            if payment.invoice_id:
                return _by_invoice(payment.invoice, line, f"reference {reference}")
            return Match(Line.UNMATCHED, note=(
                f"Payment #{payment.pk} ({reference}) is "
                f"{payment.get_status_display().lower()}: nothing to pay."))
        # an invoice's own reference (printed on it) when no payment carries it
        ends = Q()
        for reference in valid:
            ends |= Q(number__iendswith=reference[-4:])
        for invoice in Invoice.objects.filter(ends, operator=operator,
                                              kind=Invoice.Kind.INVOICE).exclude(number=""):
            if rf_reference(invoice.number) in valid:
                return _by_invoice(invoice, line, f"reference {rf_reference(invoice.number)}")
    numbers = _invoice_numbers(line.remittance)
    if numbers:
        invoice = (Invoice.objects.annotate(upper_number=Upper("number"))
                   .filter(operator=operator, kind=Invoice.Kind.INVOICE,
                           upper_number__in=numbers).exclude(number="")
                   .order_by("-issue_date", "-pk").first())
        if invoice is not None:
            return _by_invoice(invoice, line, f"invoice number {invoice.number}")
    notes.append("No structured reference or invoice number found.")
    return Match(Line.UNMATCHED, note=" ".join(notes))


def _by_invoice(invoice: Invoice, line, how: str) -> Match:
    if str(invoice.currency) != line.currency:
        return Match(Line.UNMATCHED, invoice=invoice, note=(
            f"The transfer is in {line.currency}, invoice {invoice.number} in "
            f"{invoice.currency}: not matched."))
    if not _payable(invoice):
        return Match(Line.UNMATCHED, invoice=invoice, note=_nothing_open(invoice))
    return Match(Line.MATCHED, invoice=invoice, note=f"By {how}.")


def payment_receive(*, payment: Payment, amount: Decimal, reference: str,
                    now: datetime | None = None, actor=None) -> Payment:
    """``amount`` of an open payment received (a bank transfer). All of it: the payment is paid.
    Less: the part received becomes a paid payment of its own (same invoice and part, bank
    transfer), the open payment keeps its reference and is reduced to what is left, and the
    invoice's paid amount moves by the part. Returns the paid payment."""
    from .dunning import dunning_close_if_paid

    now = now or timezone.now()
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise PaymentError("An amount received is a Decimal above 0.")
    with atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related(
            "invoice").get(pk=payment.pk)
        currency = str(locked.currency)
        if round_money(amount, currency) != amount:
            raise PaymentError(f"{currency} {amount} has more decimals than {currency} has.")
        if locked.status not in PAYABLE:
            raise PaymentError(f"Payment #{locked.pk} is {locked.get_status_display().lower()}: "
                               f"it is not waiting for money.")
        if amount > locked.amount:
            raise PaymentError(f"{currency} {amount} is more than the {currency} "
                               f"{locked.amount} open in payment #{locked.pk}.")
        if amount == locked.amount:
            return payment_succeeded(payment=locked, now=now, paid_reference=reference,
                                     actor=actor)
        if locked.purpose not in SPLITTABLE:
            raise PaymentError(f"A {locked.get_purpose_display().lower()} payment is not paid in "
                               f"parts.")
        left = locked.amount - amount
        Payment.objects.filter(pk=locked.pk).update(amount=left, updated_at=now)
        part = Payment.objects.create(
            operator_id=locked.operator_id, customer_id=locked.customer_id,
            purpose=locked.purpose, channel=Payment.Channel.BANK_TRANSFER,
            invoice_id=locked.invoice_id, instalment=locked.instalment,
            instalments=locked.instalments, currency=currency, amount=amount,
            status=Payment.Status.SUCCEEDED, due_on=locked.due_on, paid_at=now,
            paid_reference=(reference or "")[:100], created_by=acting_user(actor))
        event_record(kind="paid", payment=part, actor=actor, at=now, message=(
            f"Part payment received: {currency} {amount}"
            + (f" ({reference})" if reference else "")
            + f"; {currency} {left} still open in payment #{locked.pk}."))
        event_record(kind="part_received", payment=locked, actor=actor, at=now, message=(
            f"{currency} {amount} received (payment #{part.pk}); {currency} {left} left to "
            f"pay."), data={"received": str(amount), "left": str(left), "part": part.pk})
        if locked.invoice_id and locked.invoice.status != Invoice.Status.DRAFT:
            invoice = invoice_apply_payment(invoice=locked.invoice, amount=amount,
                                            today=timezone.localdate(now))
            if invoice.status == Invoice.Status.PAID:
                event_record(kind="invoice_paid", invoice=invoice, at=now, actor=actor,
                             message=f"Invoice {invoice.number} is paid in full.")
                dunning_close_if_paid(invoice=invoice, now=now, actor=actor)
        return part


def _apply(*, amount: Decimal, currency: str, payments: list[Payment], reference: str,
           now: datetime, actor) -> Match:
    """Pay ``payments`` in order with ``amount``: each one in full while the money lasts, the
    next in part; what is left over is the excess."""
    left, first, paid, partial = amount, None, [], False
    for payment in payments:
        if left <= 0:
            break
        if left >= payment.amount:
            done = payment_succeeded(payment=payment, now=now, paid_reference=reference,
                                     actor=actor)
            left -= payment.amount
        else:
            done = payment_receive(payment=payment, amount=left, reference=reference, now=now,
                                   actor=actor)
            left, partial = ZERO, True
        first = first or done
        paid.append(f"#{done.pk} {currency} {done.amount}")
    note = "Paid: " + ", ".join(paid) + "."
    if partial:
        open_left = sum((p.amount for p in Payment.objects.filter(
            pk__in=[p.pk for p in payments], status__in=PAYABLE)), ZERO)
        return Match(Line.PARTIAL, payment=first, note=(
            f"{note} Part payment: {currency} {open_left} is still open."))
    if left > 0:
        return Match(Line.OVERPAID, payment=first, excess=left, note=(
            f"{note} {currency} {left} more than was due: refund it or keep it as credit."))
    return Match(Line.MATCHED, payment=first, note=note)


def _line_reference(row: BankTransaction) -> str:
    return (row.fingerprint[4:] if row.fingerprint.startswith("ref:")
            else f"bank statement {row.statement_id}, line {row.pk}")[:100]


def _match_line(row: BankTransaction, line: StatementLine, now: datetime, actor) -> None:
    found = _find(row.operator, line)
    outcome = found
    if found.status == Line.MATCHED:
        payments = [found.payment] if found.payment else _payable(found.invoice)
        try:
            with atomic():
                outcome = _apply(amount=row.amount, currency=row.currency, payments=payments,
                                 reference=_line_reference(row), now=now, actor=actor)
        except (PaymentError, InvoiceError) as error:
            outcome = Match(Line.UNMATCHED, note=f"Found ({found.note}) but not booked: {error}")
        else:
            outcome.note = f"{found.note} {outcome.note}"
        outcome.invoice = found.invoice or (found.payment.invoice if found.payment else None)
    row.status = outcome.status
    row.payment = outcome.payment
    row.invoice = outcome.invoice
    row.excess = outcome.excess
    row.note = outcome.note[:300]
    row.save(update_fields=["status", "payment", "invoice", "excess", "note"])
    if outcome.status == Line.OVERPAID and outcome.payment is not None:
        event_record(kind="overpaid", payment=outcome.payment, actor=actor, at=now, message=(
            f"Bank transfer of {row.currency} {row.amount}: {row.currency} {row.excess} more "
            f"than was due (to refund or keep as credit)."),
            data={"excess": str(row.excess), "bank_transaction": row.pk})


# --- the import -----------------------------------------------------------------------------------

def stored_file_name(file_name: str) -> str:
    """A safe name to store (and download) an uploaded file under."""
    try:
        return get_valid_filename(PurePath(file_name or "").name)[-100:]
    except SuspiciousFileOperation:
        return "statement"


def bank_statement_import(*, operator, file, file_name: str, actor=None,
                          now: datetime | None = None) -> BankStatement:
    """Read a statement file (CSV or camt.053), store it with every credit line not seen
    before (a line imported before, by the bank's entry reference or its content, counts as a
    duplicate), and match each new line. A file that cannot be read is refused as a whole
    (``BankImportError``)."""
    now = now or timezone.now()
    data = _read_bytes(file)
    fmt, lines = read_statement(data, file_name or "")
    fingerprints = _fingerprints(lines)
    with atomic():
        statement = BankStatement(operator=operator, file_name=(file_name or "statement")[:255],
                                  format=fmt, created_by=acting_user(actor))
        statement.file.save(stored_file_name(file_name), ContentFile(data), save=False)
        statement.save()
        known = set()
        for start in range(0, len(fingerprints), 5000):
            known.update(BankTransaction.objects.filter(
                operator=operator, fingerprint__in=fingerprints[start:start + 5000])
                .values_list("fingerprint", flat=True))
        counts = {"transactions": 0, "matched": 0, "unmatched": 0, "duplicates": 0}
        for line, fingerprint in zip(lines, fingerprints, strict=True):
            if fingerprint in known:
                counts["duplicates"] += 1
                continue
            known.add(fingerprint)
            try:
                with atomic():
                    row = BankTransaction.objects.create(
                        operator=operator, statement=statement, fingerprint=fingerprint,
                        booking_date=line.booking_date, amount=line.amount,
                        currency=line.currency, counterparty=line.counterparty[:140],
                        counterparty_iban=line.counterparty_iban[:34],
                        remittance=line.remittance[:500])
            except IntegrityError:  # imported at the same moment by someone else
                counts["duplicates"] += 1
                continue
            counts["transactions"] += 1
            _match_line(row, line, now, actor)
            counts["unmatched" if row.status == Line.UNMATCHED else "matched"] += 1
        for field, value in counts.items():
            setattr(statement, field, value)
        statement.save(update_fields=[*counts, "updated_at"])
    return statement


def bank_statement_summary(statement: BankStatement) -> dict:
    """What an import did, in numbers (the command's JSON line, the admin's message)."""
    by_status = dict.fromkeys(Line.values, 0)
    for status in statement.lines.values_list("status", flat=True):
        by_status[status] += 1
    return {"statement": statement.pk, "file_name": statement.file_name,
            "format": statement.format, "transactions": statement.transactions,
            "matched": statement.matched, "unmatched": statement.unmatched,
            "duplicates": statement.duplicates, "by_status": by_status}


def bank_transaction_resolve(*, transaction: BankTransaction, payment: Payment | None = None,
                             invoice: Invoice | None = None, note: str, actor,
                             now: datetime | None = None) -> BankTransaction:
    """Finance matches an unmatched line by hand: to ``payment`` (open, same operator and
    currency), or to ``invoice``'s open payments; with neither, the line is ignored (not money
    owed to us: a refund from a supplier, an interest payment). The amount pays them as an
    automatic match would (in part, or with the excess recorded); the line becomes
    ``resolved`` (or ``ignored``) with the note and who did it."""
    now = now or timezone.now()
    note = (note or "").strip()
    if not note:
        raise PaymentError("Say why (a note is kept with the line).")
    with atomic():
        line = BankTransaction.objects.select_for_update().get(pk=transaction.pk)
        if line.status != Line.UNMATCHED:
            raise PaymentError(f"This line is {line.get_status_display().lower()} already.")
        who = getattr(actor, "get_username", lambda: "")()
        signed = f"{note} ({who})" if who else note
        if payment is None and invoice is None:
            line.status = Line.IGNORED
            line.note = signed[:300]
            line.save(update_fields=["status", "note"])
            return line
        if payment is not None:
            if payment.operator_id != line.operator_id:
                raise PaymentError("That payment belongs to another operator.")
            if invoice is not None and payment.invoice_id != invoice.pk:
                raise PaymentError(f"Payment #{payment.pk} is not a payment of {invoice}.")
            if payment.status not in PAYABLE:
                raise PaymentError(f"Payment #{payment.pk} is "
                                   f"{payment.get_status_display().lower()}: it is not waiting "
                                   f"for money.")
            currency = str(payment.currency)
            payments = [payment]
            invoice = payment.invoice
        else:
            if invoice.operator_id != line.operator_id:
                raise PaymentError("That invoice belongs to another operator.")
            currency = str(invoice.currency)
            payments = _payable(invoice)
            if not payments:
                raise PaymentError(_nothing_open(invoice))
        if currency != str(line.currency):
            raise PaymentError(f"The line is in {line.currency}, the payment in {currency}.")
        outcome = _apply(amount=line.amount, currency=currency, payments=payments,
                         reference=_line_reference(line), now=now, actor=actor)
        line.status = Line.RESOLVED
        line.payment = outcome.payment
        line.invoice = invoice
        line.excess = outcome.excess
        line.note = f"{signed}: {outcome.note}"[:300]
        line.save(update_fields=["status", "payment", "invoice", "excess", "note"])
        event_record(kind="bank_resolved", payment=outcome.payment, actor=actor, at=now,
                     message=(f"Bank transfer of {line.currency} {line.amount} of "
                              f"{line.booking_date:%Y-%m-%d} matched by hand: {note}"),
                     data={"bank_transaction": line.pk, "excess": str(line.excess)})
        return line
