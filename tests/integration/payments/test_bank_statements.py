"""Bank statements (CSV and camt.053): credits stored once and matched to the open payments by
their structured reference or invoice number; exact, partial and overpaid transfers; lines
resolved by hand; hostile, malformed and oversized files refused."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invoicing.selectors import rf_reference, structured_reference
from payments.models import BankStatement, BankTransaction, Payment
from payments.services import invoice_schedule_payments
from payments.services.banking import (
    MAX_BYTES,
    BankImportError,
    bank_statement_import,
    bank_transaction_resolve,
    parse_amount,
    payment_receive,
    rf_candidates,
    rf_valid,
)
from payments.services.collection import PaymentError
from tests.factories import CustomerFactory
from tests.integration.promotions.conftest import build_shop

from .conftest import ISSUED_ON, at, issued_invoice, on_plan

D = Decimal
#: the day the statements are imported (before the invoices' due date, 2026-11-16)
NOW = at(date(2026, 11, 10))
HEADER = ("booking_date;amount;currency;counterparty_name;counterparty_iban;remittance;"
          "entry_reference")


def transfer_invoice(shop, sessions=3, customer=None):
    """An issued October invoice paid by bank transfer (``sessions`` × 4.84), and its payment
    waiting for a transfer with the invoice's structured reference."""
    customer = customer or CustomerFactory(operator=shop.operator)
    invoice = issued_invoice(shop, sessions=sessions, customer=customer)
    (payment,) = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert payment.channel == "bank_transfer"
    assert payment.reference == structured_reference(invoice)
    return invoice, payment


def csv_bytes(*rows, header=HEADER, delimiter=";", bom=False) -> bytes:
    text = "\n".join([header.replace(";", delimiter), *rows]) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def row(amount, remittance, ref="", day="2026-11-09", name="J. Jansen",
        iban="NL91ABNA0417164300", currency="EUR"):
    return f"{day};{amount};{currency};{name};{iban};{remittance};{ref}"


def upload(shop, data: bytes, name="statement.csv", now=NOW) -> BankStatement:
    return bank_statement_import(operator=shop.operator, file=io.BytesIO(data), file_name=name,
                                 now=now)


def lines(statement):
    return list(statement.lines.order_by("pk"))


# --- matching -----------------------------------------------------------------------------------

def test_exact_transfer_with_the_structured_reference_pays_the_invoice(shop):
    invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", f"Betaling {payment.reference}", "B-1")))
    (line,) = lines(statement)
    assert line.status == "matched" and line.payment_id == payment.pk
    assert line.invoice_id == invoice.pk and line.excess == 0 and line.amount == D("14.52")
    assert statement.transactions == statement.matched == 1 and statement.unmatched == 0
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and payment.paid_reference == "B-1"
    assert invoice.status == "paid" and invoice.amount_paid == D("14.52")
    assert statement.format == "csv" and statement.file.name


def test_a_reference_written_in_groups_of_four_is_found(shop):
    _invoice, payment = transfer_invoice(shop)
    spaced = " ".join(payment.reference[i:i + 4] for i in range(0, len(payment.reference), 4))
    statement = upload(shop, csv_bytes(row("14.52", f"invoice {spaced.lower()} thanks")))
    assert lines(statement)[0].status == "matched"


def test_partial_transfer_becomes_a_paid_part_and_the_rest_stays_open(shop):
    invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("10,00", payment.reference, "B-1")))
    (line,) = lines(statement)
    assert line.status == "partial" and "4.52 is still open" in line.note
    payment.refresh_from_db()
    assert payment.status == "scheduled" and payment.amount == D("4.52")
    assert payment.reference == structured_reference(invoice)          # kept for the rest
    part = Payment.objects.get(pk=line.payment_id)
    assert part.pk != payment.pk and part.status == "succeeded" and part.amount == D("10.00")
    assert part.invoice_id == invoice.pk and part.channel == "bank_transfer"
    assert part.paid_reference == "B-1" and part.reference == ""
    invoice.refresh_from_db()
    assert invoice.status == "partially_paid" and invoice.amount_paid == D("10.00")
    rest = upload(shop, csv_bytes(row("4,52", payment.reference, "B-2")))
    assert lines(rest)[0].status == "matched"
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == D("14.52")
    assert payment.status == "succeeded"
    assert sum(p.amount for p in invoice.payments.filter(status="succeeded")) == D("14.52")


def test_overpaid_transfer_pays_the_invoice_and_records_the_excess(shop):
    invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("20,00", payment.reference)))
    (line,) = lines(statement)
    assert line.status == "overpaid" and line.excess == D("5.48")
    assert "5.48 more than was due" in line.note
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == D("14.52")
    assert payment.events.filter(kind="overpaid").count() == 1


def test_a_line_with_nothing_to_find_is_unmatched_for_finance(shop):
    transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", "Gift for the team")))
    (line,) = lines(statement)
    assert line.status == "unmatched" and line.payment is None and line.invoice is None
    assert "No structured reference or invoice number" in line.note
    assert statement.unmatched == 1 and statement.matched == 0


def test_a_reference_with_wrong_check_digits_is_not_a_reference(shop):
    invoice, payment = transfer_invoice(shop)
    body = payment.reference[4:]
    wrong = f"RF{(int(payment.reference[2:4]) % 97) + 1:02d}{body}"
    assert not rf_valid(wrong)
    statement = upload(shop, csv_bytes(row("14,52", f"ref {wrong}")))
    (line,) = lines(statement)
    assert line.status == "unmatched" and "wrong check digits" in line.note
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


def test_invoice_number_in_the_remittance_pays_the_invoices_open_payment(shop):
    invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", f"Invoice {invoice.number.lower()}.")))
    (line,) = lines(statement)
    assert line.status == "matched" and line.payment_id == payment.pk
    assert f"invoice number {invoice.number}" in line.note


def test_invoice_number_of_an_invoice_in_another_currency_is_unmatched_with_a_note(shop):
    invoice, _payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", f"Invoice {invoice.number}",
                                           currency="USD")))
    (line,) = lines(statement)
    assert line.status == "unmatched" and line.invoice_id == invoice.pk
    assert "in USD" in line.note and "in EUR" in line.note
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


def test_a_reference_in_another_currency_is_unmatched_too(shop):
    _invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", payment.reference, currency="CHF")))
    (line,) = lines(statement)
    assert line.status == "unmatched" and "in CHF" in line.note


def test_one_transfer_for_all_instalments_pays_them_in_order(shop):
    customer = CustomerFactory(operator=shop.operator)
    on_plan(customer, "instalments", instalments=3)
    invoice = issued_invoice(shop, sessions=3, customer=customer)          # 14.52
    parts = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert [p.amount for p in parts] == [D("4.84")] * 3
    assert parts[1].reference == rf_reference(f"{invoice.number}P2")
    statement = upload(shop, csv_bytes(row("12,00", f"{invoice.number}")))
    (line,) = lines(statement)
    assert line.status == "partial"
    amounts = {p.pk: (p.status, p.amount) for p in Payment.objects.filter(invoice=invoice)}
    assert amounts[parts[0].pk] == ("succeeded", D("4.84"))
    assert amounts[parts[1].pk] == ("succeeded", D("4.84"))
    assert amounts[parts[2].pk] == ("scheduled", D("2.52"))            # 2.32 of it paid
    # the instalment's own reference pays only that part
    second = upload(shop, csv_bytes(row("2,52", parts[2].reference)))
    assert lines(second)[0].status == "matched"
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == D("14.52")


def test_a_paid_invoice_paid_again_is_left_for_finance(shop):
    invoice, payment = transfer_invoice(shop)
    upload(shop, csv_bytes(row("14,52", payment.reference, "B-1")))
    again = upload(shop, csv_bytes(row("14,52", payment.reference, "B-2")))
    (line,) = lines(again)
    assert line.status == "unmatched" and "paid already" in line.note
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("14.52")


def test_only_this_operators_payments_are_matched(shop):
    other = build_shop()
    _theirs, their_payment = transfer_invoice(other)
    statement = upload(shop, csv_bytes(row("14,52", their_payment.reference)))
    assert lines(statement)[0].status == "unmatched"
    their_payment.refresh_from_db()
    assert their_payment.status == "scheduled"


# --- duplicates ---------------------------------------------------------------------------------

def test_a_line_imported_twice_is_a_duplicate_not_a_second_payment(shop):
    invoice, payment = transfer_invoice(shop)
    data = csv_bytes(row("7,00", payment.reference, "B-77"),
                     row("3,00", payment.reference))                   # no entry reference
    first = upload(shop, data)
    assert (first.transactions, first.duplicates) == (2, 0)
    second = upload(shop, data, name="statement-again.csv")
    assert (second.transactions, second.matched, second.duplicates) == (0, 0, 2)
    assert BankTransaction.objects.count() == 2
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("10.00")


def test_two_equal_transfers_in_one_file_are_two_lines(shop):
    invoice, payment = transfer_invoice(shop)
    data = csv_bytes(row("5,00", payment.reference), row("5,00", payment.reference))
    statement = upload(shop, data)
    assert statement.transactions == 2 and statement.duplicates == 0
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("10.00")


# --- CSV forms ----------------------------------------------------------------------------------

def test_csv_with_bom_commas_decimal_points_and_other_column_names(shop):
    _invoice, payment = transfer_invoice(shop)
    header = "Date,Amount,Currency,Counterparty,IBAN,Description"
    data = csv_bytes(f'20.11.2026,"1,014.52",EUR,"Jansen, J.",NL91 ABNA 0417 1643 00,'
                     f'{payment.reference}', "20.11.2026,-50.00,EUR,Shop,,Card payment",
                     header=header, delimiter=",", bom=True)
    statement = upload(shop, data)
    (line,) = lines(statement)                                  # the debit is left out
    assert line.amount == D("1014.52") and line.booking_date == date(2026, 11, 20)
    assert line.counterparty == "Jansen, J." and line.counterparty_iban == "NL91ABNA0417164300"
    assert line.status == "overpaid" and line.excess == D("1000.00")


@pytest.mark.parametrize(("text", "amount"), [
    ("14,52", D("14.52")), ("14.52", D("14.52")), ("1.234,56", D("1234.56")),
    ("1,234.56", D("1234.56")), ("-12,5", D("-12.5")), ("+7", D("7")),
    ("1.234.567", D("1234567")), ("1 234,56", D("1234.56")),
])
def test_amounts_with_decimal_comma_or_point(text, amount):
    assert parse_amount(text) == amount


@pytest.mark.parametrize("text", ["1.234", "1,234", "12,34,5", "abc", "", "1e5", "12.3.4,5"])
def test_ambiguous_or_malformed_amounts_are_refused(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_a_row_that_cannot_be_read_refuses_the_whole_file_naming_the_line(shop):
    _invoice, payment = transfer_invoice(shop)
    data = csv_bytes(row("14,52", payment.reference), row("abc", "x"))
    with pytest.raises(BankImportError, match="Line 3: 'abc' is not an amount"):
        upload(shop, data)
    assert not BankStatement.objects.exists() and not BankTransaction.objects.exists()
    payment.refresh_from_db()
    assert payment.status == "scheduled"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty."),
    (b"\xef\xbb\xbf \r\n\r\n", "The file is empty."),
    (bytes(range(256)) * 40, "not a CSV text file"),
    (b"\x89PNG\r\n\x1a\n" + b"\xff\xfe\xfd" * 100, "not UTF-8 text"),
    (b"date;amount\n2026-11-09;14,52\n", "lacks the column(s) currency"),
    (csv_bytes(row("14,52", "x", day="2026-13-45")), "is not a date"),
    (csv_bytes(row("14,523", "x")), "is ambiguous"),
    (csv_bytes(row("14,5", "x", currency="EURO")), "is not a currency code"),
    (csv_bytes(row("14,52", "x") + ";extra"), "cells where the header has"),
    (csv_bytes('2026-11-09;14,52;EUR;"unterminated;NL91;x;'), "the CSV cannot be read"),
])
def test_empty_binary_and_malformed_files_are_refused_with_a_clear_message(shop, data, message):
    with pytest.raises(BankImportError) as refused:
        upload(shop, data)
    assert message in str(refused.value)
    assert not BankStatement.objects.exists()


def test_a_file_over_the_size_limit_is_refused_unread(shop):
    assert MAX_BYTES == 20 * 1024 * 1024
    big = csv_bytes(*[row("1,00", "x" * 200)] * ((MAX_BYTES // 250) + 10))
    assert len(big) > MAX_BYTES
    with pytest.raises(BankImportError, match="larger than 20 MB"):
        upload(shop, big)

    class Upload(io.BytesIO):
        size = MAX_BYTES + 1

        def read(self, *args):
            raise AssertionError("an oversized upload is refused before it is read")

    with pytest.raises(BankImportError, match="larger than 20 MB"):
        bank_statement_import(operator=shop.operator, file=Upload(b"x"), file_name="big.csv")
    assert not BankStatement.objects.exists()


def test_formula_cells_are_stored_as_plain_text_and_never_run(shop):
    data = csv_bytes(row("5,00", "=cmd|' /C calc'!A0", name="=HYPERLINK(\"http://x\")",
                         ref="@SUM(1+1)"))
    statement = upload(shop, data)
    (line,) = lines(statement)
    assert line.remittance == "=cmd|' /C calc'!A0"
    assert line.counterparty == '=HYPERLINK("http://x")'
    assert line.fingerprint == "ref:@SUM(1+1)" and line.status == "unmatched"


# --- camt.053 -----------------------------------------------------------------------------------

def camt(*entries: str, namespace="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="{namespace}"><BkToCstmrStmt>'
            f'<GrpHdr><MsgId>STMT-20261110</MsgId><CreDtTm>2026-11-10T06:00:00</CreDtTm>'
            f'</GrpHdr><Stmt><Id>20261110</Id><CreDtTm>2026-11-10T06:00:00</CreDtTm>'
            f'<Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>{"".join(entries)}'
            f'</Stmt></BkToCstmrStmt></Document>').encode()


def entry(amount, *, indicator="CRDT", status="BOOK", ref="", ustrd="", rf="",
          name="J. Jansen", iban="DE89370400440532013000", currency="EUR",
          booked="2026-11-09", reversal=False, details=None) -> str:
    remittance = "".join(f"<Ustrd>{text}</Ustrd>" for text in ([ustrd] if ustrd else []))
    if rf:
        remittance += (f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                       f"<Ref>{rf}</Ref></CdtrRefInf></Strd>")
    tx = details if details is not None else (
        f"<TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
        f"<RltdPties><Dbtr><Nm>{name}</Nm></Dbtr><DbtrAcct><Id><IBAN>{iban}</IBAN></Id>"
        f"</DbtrAcct></RltdPties><RmtInf>{remittance}</RmtInf></TxDtls>")
    return (f'<Ntry><Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
            + ("<RvslInd>true</RvslInd>" if reversal else "")
            + f"<Sts>{status}</Sts><BookgDt><Dt>{booked}</Dt></BookgDt>"
            f"<ValDt><Dt>{booked}</Dt></ValDt>"
            + (f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else "")
            + "<BkTxCd/>"
            f"<NtryDtls>{tx}</NtryDtls></Ntry>")


def test_camt053_booked_credits_are_matched_and_the_rest_left_out(shop):
    first, one = transfer_invoice(shop, sessions=3)                      # 14.52
    second, two = transfer_invoice(shop, sessions=2)                     # 9.68
    third, three = transfer_invoice(shop, sessions=1)                    # 4.84
    data = camt(
        entry("14.52", ref="E-1", rf=one.reference),                     # structured: exact
        entry("5.00", ref="E-2", ustrd=f"Invoice {second.number}"),      # number: partial
        entry("10.00", ref="E-3", ustrd=f"Betaling {three.reference}"),  # overpaid
        entry("99.00", ref="E-4", indicator="DBIT", ustrd="Rent"),       # a debit
        entry("4.84", ref="E-5", status="PDNG", rf=three.reference),     # not booked yet
        entry("4.84", ref="E-6", reversal=True, rf=three.reference),     # a reversal
        entry("3.00", ref="E-7", ustrd="Unknown"),                       # unmatched
    )
    statement = upload(shop, data, name="camt.xml")
    assert statement.format == "camt053"
    got = {line.fingerprint: (line.status, line.amount, line.excess) for line in lines(statement)}
    assert got == {"ref:E-1": ("matched", D("14.52"), 0), "ref:E-2": ("partial", D("5.00"), 0),
                   "ref:E-3": ("overpaid", D("10.00"), D("5.16")),
                   "ref:E-7": ("unmatched", D("3.00"), 0)}
    assert (statement.transactions, statement.matched, statement.unmatched) == (4, 3, 1)
    e1 = statement.lines.get(fingerprint="ref:E-1")
    assert e1.counterparty == "J. Jansen" and e1.counterparty_iban == "DE89370400440532013000"
    assert e1.booking_date == date(2026, 11, 9)
    for invoice, paid in ((first, D("14.52")), (second, D("5.00")), (third, D("4.84"))):
        invoice.refresh_from_db()
        assert invoice.amount_paid == paid
    again = upload(shop, data, name="camt-again.xml")
    assert (again.transactions, again.duplicates) == (0, 4)


def test_camt053_batch_entry_gives_one_line_per_transaction(shop):
    _a, one = transfer_invoice(shop, sessions=1)
    _b, two = transfer_invoice(shop, sessions=2)
    details = "".join(
        f"<TxDtls><Refs><AcctSvcrRef>T-{n}</AcctSvcrRef></Refs><AmtDtls><TxAmt>"
        f'<Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls><RmtInf><Strd><CdtrRefInf>'
        f"<Ref>{payment.reference}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>"
        for n, (amount, payment) in enumerate((("4.84", one), ("9.68", two)), start=1))
    statement = upload(shop, camt(entry("14.52", ref="BATCH-1", details=details)))
    assert sorted((line.fingerprint, line.status) for line in lines(statement)) == [
        ("ref:T-1", "matched"), ("ref:T-2", "matched")]


def test_xml_with_an_external_entity_is_refused_and_nothing_is_read(shop, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (f'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY xxe SYSTEM '
            f'"file://{secret}">]>'.encode()
            + camt(entry("1.00", ref="X-1", ustrd="&xxe;")).split(b"?>", 1)[1])
    with pytest.raises(BankImportError, match="DOCTYPE") as refused:
        upload(shop, data, name="evil.xml")
    assert "TOP-SECRET" not in str(refused.value)
    # in UTF-16 the DOCTYPE is not seen in the bytes: the parser leaves the entity unexpanded
    # and the document is refused for its DOCTYPE all the same
    wide = data.decode().replace('encoding="UTF-8"', "").encode("utf-16")
    with pytest.raises(BankImportError, match="DOCTYPE") as refused:
        upload(shop, wide, name="evil.xml")
    assert "TOP-SECRET" not in str(refused.value)
    assert not BankTransaction.objects.exists() and not BankStatement.objects.exists()


def test_billion_laughs_is_refused_not_expanded(shop):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10))
    data = (f'<?xml version="1.0"?><!DOCTYPE Document [{entities}]>'.encode()
            + camt(entry("1.00", ref="L-1", ustrd="&lol9;")).split(b"?>", 1)[1])
    with pytest.raises(BankImportError, match="DOCTYPE"):
        upload(shop, data, name="lol.xml")
    assert not BankTransaction.objects.exists()


@pytest.mark.parametrize(("data", "message"), [
    (b"<Document><unclosed>", "The XML cannot be read"),
    (b'<?xml version="1.0"?><Document xmlns="urn:example:other"/>', "not a camt.053"),
    (camt(entry("abc", ref="A")), "Entry 1: the amount is missing or not a number"),
    (camt(entry("1.00", ref="A", indicator="XXXX")), "CdtDbtInd is XXXX"),
    (camt(entry("1.00", ref="A", booked="yesterday")), "booking date"),
    (camt(entry("1.001", ref="A")), "more decimals than EUR has"),
])
def test_malformed_camt053_is_refused_with_a_clear_message(shop, data, message):
    with pytest.raises(BankImportError) as refused:
        upload(shop, data, name="camt.xml")
    assert message in str(refused.value)
    assert not BankStatement.objects.exists()


# --- by hand ------------------------------------------------------------------------------------

def test_finance_resolves_an_unmatched_line_by_invoice_or_ignores_it(shop, django_user_model):
    invoice, payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", "for my charging", "B-1"),
                                       row("0,42", "interest", "B-2")))
    charging, interest = lines(statement)
    assert charging.status == interest.status == "unmatched"
    clerk = django_user_model.objects.create(username="clerk")
    with pytest.raises(PaymentError, match="Say why"):
        bank_transaction_resolve(transaction=charging, invoice=invoice, note=" ", actor=clerk)
    resolved = bank_transaction_resolve(transaction=charging, invoice=invoice,
                                        note="Customer phoned", actor=clerk, now=NOW)
    assert resolved.status == "resolved" and resolved.payment_id == payment.pk
    assert "Customer phoned (clerk)" in resolved.note
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    ignored = bank_transaction_resolve(transaction=interest, note="Bank interest", actor=clerk)
    assert ignored.status == "ignored" and ignored.payment is None
    with pytest.raises(PaymentError, match="resolved by hand already"):
        bank_transaction_resolve(transaction=charging, invoice=invoice, note="again",
                                 actor=clerk)


def test_resolving_by_hand_refuses_another_operators_payment_and_another_currency(shop):
    other = build_shop()
    _theirs, their_payment = transfer_invoice(other)
    _mine, my_payment = transfer_invoice(shop)
    statement = upload(shop, csv_bytes(row("14,52", "?"), row("14,52", "?", currency="USD")))
    eur, usd = lines(statement)
    with pytest.raises(PaymentError, match="another operator"):
        bank_transaction_resolve(transaction=eur, payment=their_payment, note="x", actor=None)
    with pytest.raises(PaymentError, match="in USD"):
        bank_transaction_resolve(transaction=usd, payment=my_payment, note="x", actor=None)
    eur.refresh_from_db()
    assert eur.status == "unmatched"


def test_payment_receive_splits_only_what_is_open(shop):
    _invoice, payment = transfer_invoice(shop)
    with pytest.raises(PaymentError, match="more than"):
        payment_receive(payment=payment, amount=D("20.00"), reference="x", now=NOW)
    with pytest.raises(PaymentError, match="more decimals"):
        payment_receive(payment=payment, amount=D("1.001"), reference="x", now=NOW)
    part = payment_receive(payment=payment, amount=D("4.52"), reference="x", now=NOW)
    rest = payment_receive(payment=payment, amount=D("10.00"), reference="y", now=NOW)
    assert part.amount == D("4.52") and rest.pk == payment.pk and rest.status == "succeeded"
    assert rest.amount == D("10.00")


def test_rf_candidates_find_references_and_flag_wrong_ones():
    good = rf_reference("ABC-INV-2026-000001")
    valid, invalid = rf_candidates(f"pay {good[:4]} {good[4:8]} {good[8:]} now")
    assert good in valid and not invalid
    # check digits 00 are never right; the words after it are read as part of it
    assert rf_candidates("RF00ABC and nothing") == ([], ["RF00ABCANDNOTHING"])
    assert rf_candidates("XRF18539007547034 no reference inside a word") == ([], [])


# --- the command --------------------------------------------------------------------------------

def test_the_command_imports_a_file_and_prints_one_json_line(shop, tmp_path):
    _invoice, payment = transfer_invoice(shop)
    path = tmp_path / "statement.csv"
    path.write_bytes(csv_bytes(row("14,52", payment.reference, "B-1"), row("1,00", "?", "B-2")))
    out = io.StringIO()
    call_command("import_bank_statement", str(path), "--operator", shop.operator.code,
                 stdout=out)
    printed = out.getvalue().strip().splitlines()
    assert len(printed) == 1
    summary = json.loads(printed[0])
    assert summary["transactions"] == 2 and summary["matched"] == 1
    assert summary["unmatched"] == 1 and summary["duplicates"] == 0
    assert summary["by_status"]["matched"] == 1 and summary["format"] == "csv"
    with pytest.raises(CommandError, match="no operator with the code"):
        call_command("import_bank_statement", str(path), "--operator", "nope", stdout=out)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="The file is empty"):
        call_command("import_bank_statement", str(empty), "--operator", shop.operator.code,
                     stdout=out)


def test_the_stored_file_cannot_leave_the_upload_folder(shop):
    statement = upload(shop, csv_bytes(row("1,00", "x")), name="../../etc/evil name.csv")
    assert statement.file_name == "../../etc/evil name.csv"             # shown as given
    assert ".." not in statement.file.name
    assert statement.file.name.startswith("bank-statements/")
    stored = statement.file.name.rsplit("/", 1)[1]
    assert stored.startswith("evil_name") and stored.endswith(".csv")


def test_a_wrong_reference_is_never_taken_for_a_shorter_one_with_right_digits():
    """Cut anywhere, some shorter run of a wrong reference has right check digits by chance;
    references end only where a group (or the text) ends."""
    from invoicing.selectors import rf_reference

    wrongs_seen = 0
    for number in range(1, 400):
        good = rf_reference(f"VNL-INV-2026-{number:06d}")
        wrong = f"RF{(int(good[2:4]) % 97) + 1:02d}{good[4:]}"
        if rf_valid(wrong):
            continue
        wrongs_seen += 1
        valid, invalid = rf_candidates(f"ref {wrong} thanks")
        # never a cut inside the reference as written (the word after it is its own group)
        assert set(valid) <= {wrong + "THANK"}
        assert valid or invalid == [wrong + "THANK"]
        assert rf_candidates(f"ref {wrong}") == ([], [wrong])
    assert wrongs_seen > 300
    grouped = " ".join(rf_reference("VNL-INV-2026-000042")[i:i + 4] for i in range(0, 23, 4))
    assert rf_candidates(f"{grouped} thanks")[0] == [rf_reference("VNL-INV-2026-000042")]
