"""What a billing document says, as plain frozen dataclasses (no Django): the input of the PDF
renderer (``invoicing.pdf``) and of the e-mail, built from the database by
``invoicing.selectors.invoice_document``.

Every amount is a ``Decimal`` already rounded to the currency's minor unit; the renderer only
formats. Times are aware datetimes in the customer's (location's) time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
STATEMENT = "statement"      # self-billing reimbursement statement to a charger owner


@dataclass(frozen=True)
class Party:
    name: str
    address_lines: tuple[str, ...] = ()
    country: str = ""
    vat_number: str = ""
    email: str = ""
    reference: str = ""      # the customer number at the operator


@dataclass(frozen=True)
class Branding:
    colour: str = "#0B6E4F"  # hex
    logo: bytes | None = None  # PNG or JPEG


@dataclass(frozen=True)
class Line:
    """A line of the summary: sessions of a month, a fee, a discount, a reimbursement."""

    description: str
    net: Decimal                     # excl. VAT; negative for discounts and fees taken off
    vat_rate: Decimal                # percent, e.g. 21
    vat: Decimal
    quantity: Decimal | None = None
    unit: str = ""                   # "kWh", "session", "month"...
    unit_price: Decimal | None = None

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


@dataclass(frozen=True)
class VatRow:
    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class SessionRow:
    """One charging session of the annex."""

    start: datetime                  # local time of the location
    location: str
    evse_id: str
    duration_seconds: int
    energy_kwh: Decimal
    parking_seconds: int
    unit_prices: tuple[tuple[str, Decimal, str], ...]  # (dimension, price excl. VAT, unit)
    amount: Decimal                  # the session's price incl. VAT (excl. with reverse charge)
    discount: Decimal = Decimal(0)   # what coupons took off (incl. VAT), positive
    cdr_id: str = ""


@dataclass(frozen=True)
class Payment:
    """How the amount due is paid."""

    method: str                      # "bank_transfer" | "direct_debit" | "prepaid" | "none"
    iban: str = ""
    bic: str = ""
    beneficiary: str = ""
    reference: str = ""              # structured reference to quote with a transfer
    collection_date: date | None = None  # direct debit


@dataclass(frozen=True)
class InvoiceDocument:
    kind: str                        # INVOICE | CREDIT_NOTE | STATEMENT
    number: str
    issue_date: date
    due_date: date | None
    period_start: date
    period_end: date                 # inclusive
    currency: str
    language: str                    # "en" | "nl" | "de"
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    vat_rows: tuple[VatRow, ...]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    credit_applied: Decimal          # prepaid credit that paid part of it
    amount_due: Decimal
    payment: Payment
    branding: Branding = field(default_factory=Branding)
    sessions: tuple[SessionRow, ...] = ()
    reverse_charge: bool = False
    original_number: str = ""        # a credit note: the invoice it corrects
    notes: tuple[str, ...] = ()
    time_zone: str = "Europe/Amsterdam"
