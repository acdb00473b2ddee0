"""The EPC QR code ("GiroCode", EPC069-12) that lets a customer pay by scanning the invoice.

The payload is up to 12 lines separated by a line feed, nothing after the last line given::

    BCD                      service tag
    002                      version (the BIC is optional within the EEA)
    1                        character set: UTF-8
    SCT                      SEPA credit transfer
    <BIC>                    may be empty
    <beneficiary>            at most 70 characters
    <IBAN>                   without spaces
    EUR<amount>              0.01 to 999999999.99, a dot and two decimals
    <purpose>                empty
    <structured reference>   at most 35 characters, or else, on the next line,
    <remittance text>        at most 140 characters (never both)

The whole payload may not exceed 331 bytes. EPC069-12 fixes the error correction at level M.
"""

from __future__ import annotations

from decimal import Decimal

from ..documents import STATEMENT, InvoiceDocument
from .formatting import clean, compact_iban

MAX_AMOUNT = Decimal("999999999.99")
MAX_BYTES = 331


def epc_qr_payload(document: InvoiceDocument) -> str | None:
    """The EPC QR payload for paying ``document.amount_due`` by bank transfer, or ``None`` when
    the document gets no QR code: not a bank transfer, not in euro, nothing (or not a whole
    number of cents) to pay, a self-billing statement (the operator pays, not the reader), or
    no valid IBAN or beneficiary."""
    payment = document.payment
    amount = document.amount_due
    if document.kind == STATEMENT or payment.method != "bank_transfer":
        return None
    if clean(document.currency).upper() != "EUR":
        return None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return None
    if not Decimal("0.01") <= amount <= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        return None
    iban = compact_iban(payment.iban)
    name = clean(payment.beneficiary, 70)
    if not name or not iban_is_valid(iban):
        return None
    bic = compact_iban(payment.bic)
    reference = clean(payment.reference)
    lines = ["BCD", "002", "1", "SCT", bic, name, iban, f"EUR{amount:.2f}", ""]
    if reference and len(reference) <= 35:
        lines.append(reference)                     # structured reference
    elif reference:
        lines += ["", clean(reference, 140)]        # remittance text
    payload = "\n".join(lines).rstrip("\n")
    if len(payload.encode("utf-8")) > MAX_BYTES:
        return None
    return payload


def iban_is_valid(iban: str) -> bool:
    """The ISO 13616 check: two letters, two check digits, up to 30 alphanumerics, mod 97."""
    value = compact_iban(iban)
    if not 15 <= len(value) <= 34 or not value.isascii() or not value.isalnum():
        return False
    if not value[:2].isalpha() or not value[2:4].isdigit():
        return False
    digits = "".join(str(int(c, 36)) for c in value[4:] + value[:4])
    return int(digits) % 97 == 1
