"""Two callers at once never charge or refund twice (PostgreSQL, threads)."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from threading import Barrier

from django.db import connection

from payments.models import Payment, SimulatedCharge
from payments.services import (
    PaymentError,
    invoice_schedule_payments,
    payment_collect,
    payment_refund,
)

from .conftest import DUE_ON, ISSUED_ON, at, card, issued_invoice, on_plan

D = Decimal


def at_once(n, work):
    barrier = Barrier(n)

    def run(i):
        barrier.wait()
        try:
            return work(i)
        except PaymentError as error:
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_eight_collections_of_one_payment_at_once_charge_once(tshop):
    invoice = issued_invoice(tshop)
    card(tshop.customer)
    on_plan(tshop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    at_once(8, lambda i: payment_collect(payment=Payment(pk=payment.pk), now=at(DUE_ON)))
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and invoice.amount_paid == D("14.52")
    assert SimulatedCharge.objects.filter(operation="charge").count() == 1
    assert payment.attempts.count() == 1


def test_four_refunds_at_once_refund_once(tshop):
    invoice = issued_invoice(tshop)
    card(tshop.customer)
    on_plan(tshop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment_collect(payment=payment, now=at(DUE_ON))
    results = at_once(4, lambda i: payment_refund(payment=Payment(pk=payment.pk),
                                                  amount=D("10.00"), reason="at once"))
    refused = [r for r in results if isinstance(r, PaymentError)]
    assert len(refused) == 3
    payment.refresh_from_db()
    assert payment.amount_refunded == D("10.00")
    assert sum(r.amount for r in SimulatedCharge.objects.filter(operation="refund")) == D("10.00")
