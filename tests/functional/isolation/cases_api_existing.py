"""The API endpoints that were there before the isolation walker: quotes, CDR intake and import
jobs (emobility/api/cdrs.py, tariffs/api), promotions (promotions/api) and payments
(payments/api). Rows the world does not make (a perk voucher, a top-up, an ad-hoc payment) are
B's when B has one, else a key no operator has: either way A must get 403 or 404."""

from . import LIST, Case


def _b_voucher_code(w) -> str:
    from promotions.models import PerkVoucher

    voucher = PerkVoucher.objects.filter(session__operator=w.b.operator).first()
    return voucher.code if voucher is not None else "P-BRAVO000"


def _b_top_up(w) -> str:
    from promotions.models import TopUp

    top_up = TopUp.objects.filter(wallet=w.b.wallet).first()
    return str(top_up.pk if top_up is not None else 10**17)


def _b_authorization(w) -> str:
    from payments.models import Authorization

    authorization = Authorization.objects.filter(operator=w.b.operator).first()
    return str(authorization.pk if authorization is not None else 10**17)


def _b_cdr(w) -> dict:
    """An OCPI CDR at B's EVSE with B's token (refused for A: not A's EVSE nor token)."""
    return {"id": "WALKER-CDR-1", "start_date_time": "2026-10-20T08:00:00Z",
            "end_date_time": "2026-10-20T09:00:00Z", "currency": "EUR",
            "cdr_token": {"uid": w.b.token.uid, "type": "RFID",
                          "contract_id": w.b.token.contract_id},
            "auth_method": "WHITELIST", "cdr_location": {"evse_id": w.b.evse.evse_id},
            "total_energy": 5, "total_time": 1}


def _customer(w) -> dict:
    return {"reference": w.b.customer.reference}


def _wallet(w) -> dict:
    return {"reference": w.b.customer.reference, "currency": str(w.b.wallet.currency)}


API = {
    # --- tariffs and CDRs ------------------------------------------------------------------------
    # a quote at B's EVSE: 404 (no such EVSE of A's)
    "quotes": Case(LIST, methods=("POST",),
                   body=lambda w: {"evse_id": w.b.evse.evse_id,
                                   "start": "2026-10-15T14:00:00+02:00", "energy_kwh": "10",
                                   "charging_minutes": "60"}),
    # a CDR at B's EVSE with B's token: refused, nothing stored at B (the intake answers 422
    # cdrs_refused for a request none of whose CDRs was accepted)
    "cdrs": Case(LIST, methods=("POST",), body=_b_cdr),
    # uploads are multipart: the walker reads the list (a JSON body would be 415)
    "cdr-imports": Case(LIST, query=lambda w: {"status": "done"}),
    "cdr-import": Case(kwargs=lambda w: {"pk": str(w.b.cdr_import.pk)}),
    "cdr-import-errors": Case(kwargs=lambda w: {"pk": str(w.b.cdr_import.pk)}),
    # --- promotions ------------------------------------------------------------------------------
    # B's code for B's customer: 404 (the customer is looked up first, within A)
    "coupons-validate": Case(LIST, methods=("POST",),
                             body=lambda w: {"code": w.b.coupon_code,
                                             "customer": w.b.customer.reference}),
    "coupons-redeem": Case(LIST, methods=("POST",),
                           body=lambda w: {"code": w.b.coupon_code,
                                           "customer": w.b.customer.reference}),
    "customer-redemptions": Case(kwargs=_customer),
    "customer-wallets": Case(kwargs=_customer),
    "wallet-transactions": Case(kwargs=_wallet),
    "wallet-top-ups": Case(kwargs=_wallet, methods=("GET", "POST"),
                           body=lambda w: {"amount": "10.00", "idempotency_key": "walker-1"}),
    "customer-perk-vouchers": Case(kwargs=_customer),
    "session-perk-vouchers": Case(kwargs=lambda w: {"cdr_id": w.b.session.external_id}),
    "perk-voucher": Case(kwargs=lambda w: {"code": _b_voucher_code(w)}),
    "perk-voucher-use": Case(kwargs=lambda w: {"code": _b_voucher_code(w)}, methods=("POST",),
                             body=lambda w: {}),
    # --- payments --------------------------------------------------------------------------------
    "payments": Case(LIST, query=lambda w: {"customer": w.b.customer.reference}),
    "payment": Case(kwargs=lambda w: {"pk": str(w.b.payment.pk)}),
    "payment-refund": Case(kwargs=lambda w: {"pk": str(w.b.payment.pk)}, methods=("POST",),
                           body=lambda w: {"reason": "walker", "amount": "1.00"}),
    "payment-retry": Case(kwargs=lambda w: {"pk": str(w.b.payment.pk)}, methods=("POST",),
                          body=lambda w: {}),
    "payment-cancel": Case(kwargs=lambda w: {"pk": str(w.b.payment.pk)}, methods=("POST",),
                           body=lambda w: {"reason": "walker"}),
    "top-up-pay": Case(kwargs=lambda w: {**_wallet(w), "pk": _b_top_up(w)}, methods=("POST",),
                       body=lambda w: {}),
    "customer-payment-methods": Case(kwargs=_customer),
    # an ad-hoc payment at B's EVSE (without the Idempotency-Key header the walker cannot send:
    # 400; A's manager may not add payments: 403)
    "ad-hoc-payments": Case(LIST, methods=("POST",),
                            body=lambda w: {"evse_id": w.b.evse.evse_id, "max_amount": "50.00",
                                            "currency": "EUR"}),
    "ad-hoc-payment": Case(kwargs=lambda w: {"pk": _b_authorization(w)}),
    # a terminal transaction naming B's operator: 404 (or 403 for A's manager)
    "terminal-transactions": Case(LIST, methods=("POST",),
                                  body=lambda w: {"terminal_serial": "BRAVO-TERMINAL",
                                                  "authorization_reference": "walker-1",
                                                  "amount": "10.00", "currency": "EUR",
                                                  "authorized_at": "2026-10-15T12:00:00Z",
                                                  "operator": w.b.operator.code}),
}

PORTAL = {}
