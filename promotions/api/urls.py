"""``/api/v1/`` addresses of the promotions API (included by ``emobility/api/urls.py``)."""

from django.urls import path, re_path

from .views import (
    CouponRedeemApi,
    CouponValidateApi,
    CustomerPerkVouchersApi,
    CustomerRedemptionsApi,
    CustomerWalletsApi,
    PerkVoucherApi,
    PerkVoucherUseApi,
    SessionPerkVouchersApi,
    WalletTopUpsApi,
    WalletTransactionsApi,
)

#: a customer reference or a CDR id: anything but a slash (percent-encoded in the address)
_REFERENCE = r"(?P<reference>[^/]+)"
#: an ISO 4217 currency code, in any case
_CURRENCY = r"(?P<currency>[A-Za-z]{3})"
#: a perk voucher's code (``P-`` and 8 characters), in any case
_VOUCHER = r"(?P<code>[A-Za-z0-9-]{1,20})"

urlpatterns = [
    path("coupons/validate", CouponValidateApi.as_view(), name="coupons-validate"),
    path("coupons/redeem", CouponRedeemApi.as_view(), name="coupons-redeem"),
    re_path(rf"^customers/{_REFERENCE}/redemptions$", CustomerRedemptionsApi.as_view(),
            name="customer-redemptions"),
    re_path(rf"^customers/{_REFERENCE}/wallets$", CustomerWalletsApi.as_view(),
            name="customer-wallets"),
    re_path(rf"^customers/{_REFERENCE}/wallets/{_CURRENCY}/transactions$",
            WalletTransactionsApi.as_view(), name="wallet-transactions"),
    re_path(rf"^customers/{_REFERENCE}/wallets/{_CURRENCY}/top-ups$", WalletTopUpsApi.as_view(),
            name="wallet-top-ups"),
    re_path(rf"^customers/{_REFERENCE}/perk-vouchers$", CustomerPerkVouchersApi.as_view(),
            name="customer-perk-vouchers"),
    re_path(r"^sessions/(?P<cdr_id>[^/]+)/perk-vouchers$", SessionPerkVouchersApi.as_view(),
            name="session-perk-vouchers"),
    re_path(rf"^perk-vouchers/{_VOUCHER}$", PerkVoucherApi.as_view(), name="perk-voucher"),
    re_path(rf"^perk-vouchers/{_VOUCHER}/use$", PerkVoucherUseApi.as_view(),
            name="perk-voucher-use"),
]
