"""Promotions: coupons and their codes, what customers hold of them, prepaid-credit wallets with
their append-only ledger, settlements of sessions and site perks (docs/promotions.md).

Money is ``Decimal`` with its currency beside it; every amount a customer sees is rounded with
the one rounding rule. Counters that must not run over (a coupon's redemptions, a code's uses,
what a redemption has left, a wallet's balance, what a credit lot has left) are guarded twice:
the services lock the row before they change it, and a database constraint refuses the
impossible value.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import CurrencyField

from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Location,
    Operator,
    TimeStampedModel,
)
from tariffs.models import TariffGroup

AMOUNT = {"max_digits": 14, "decimal_places": 4}
MONEY = {"max_digits": 14, "decimal_places": 2}


class PromotionSettings(TimeStampedModel):
    """An operator's bounds for prepaid credit bought by drivers."""

    operator = models.OneToOneField(Operator, on_delete=models.CASCADE,
                                    related_name="promotion_settings")
    top_up_min = models.DecimalField(_("smallest top-up"), default=Decimal("5.00"), **MONEY,
                                     validators=[MinValueValidator(Decimal("0.01"))])
    top_up_max = models.DecimalField(_("largest top-up"), default=Decimal("500.00"), **MONEY)

    class Meta:
        verbose_name = verbose_name_plural = _("prepaid credit settings")
        constraints = [models.CheckConstraint(
            condition=Q(top_up_min__gt=0, top_up_max__gte=F("top_up_min")),
            name="promotionsettings_top_up_bounds")]

    def __str__(self) -> str:
        return f"{self.operator}: top-ups {self.top_up_min}–{self.top_up_max}"

    def clean(self) -> None:
        if self.top_up_min and self.top_up_max and self.top_up_max < self.top_up_min:
            raise ValidationError({"top_up_max": _(
                "The largest top-up cannot be below the smallest.")})


class Coupon(TimeStampedModel):
    """What a code gives: an amount off, free sessions or a percentage off, within a validity
    window and limits, for the sessions of its scope."""

    class Unit(models.TextChoices):
        MONEY = "money", _("Amount off")
        SESSIONS = "sessions", _("Free sessions")
        PERCENTAGE = "percentage", _("Percentage off")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="coupons")
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=12, choices=Unit.choices)
    amount = models.DecimalField(_("amount off"), null=True, blank=True, **MONEY,
                                 help_text=_("Unit 'amount off': the value of the coupon."))
    currency = CurrencyField(default="EUR")
    sessions = models.PositiveIntegerField(_("free sessions"), null=True, blank=True)
    percentage = models.DecimalField(
        null=True, blank=True, max_digits=7, decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text=_("Unit 'percentage off': more than 0, at most 100."))
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True,
                                       help_text=_("Empty: no end."))
    max_redemptions = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("In total, over all its codes. Empty: no limit."))
    max_per_customer = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    redemptions_count = models.PositiveIntegerField(default=0, editable=False)
    # Scope: empty means any.
    tariff_groups = models.ManyToManyField(TariffGroup, blank=True, related_name="+")
    locations = models.ManyToManyField(Location, blank=True, related_name="+")
    stations = models.ManyToManyField(ChargingStation, blank=True, related_name="+")
    customer_kind = models.CharField(max_length=20, choices=Customer.Kind.choices, blank=True,
                                     help_text=_("Empty: any customer."))
    min_energy_kwh = models.DecimalField(_("minimum energy (kWh)"), null=True, blank=True,
                                         max_digits=10, decimal_places=4,
                                         validators=[MinValueValidator(Decimal(0))])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-valid_from", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(unit="money", amount__gt=0, sessions__isnull=True,
                             percentage__isnull=True)
                           | Q(unit="sessions", sessions__gt=0, amount__isnull=True,
                               percentage__isnull=True)
                           | Q(unit="percentage", percentage__gt=0, percentage__lte=100,
                               amount__isnull=True, sessions__isnull=True)),
                name="coupon_value_fits_unit"),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(redemptions_count__lte=F("max_redemptions")),
                name="coupon_redemptions_within_limit"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="coupon_valid_until_after_from"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.unit == self.Unit.MONEY:
            if not self.amount or self.amount <= 0:
                errors["amount"] = _("An 'amount off' coupon needs an amount above 0.")
        elif self.amount is not None:
            errors["amount"] = _("Only an 'amount off' coupon has an amount.")
        if self.unit == self.Unit.SESSIONS:
            if not self.sessions:
                errors["sessions"] = _("A 'free sessions' coupon needs at least one session.")
        elif self.sessions is not None:
            errors["sessions"] = _("Only a 'free sessions' coupon has sessions.")
        if self.unit == self.Unit.PERCENTAGE:
            if self.percentage is None or not Decimal(0) < self.percentage <= 100:
                errors["percentage"] = _("A percentage must be more than 0 and at most 100.")
        elif self.percentage is not None:
            errors["percentage"] = _("Only a 'percentage off' coupon has a percentage.")
        if self.valid_until and self.valid_from and self.valid_until <= self.valid_from:
            errors["valid_until"] = _("The end must be after the start.")
        if errors:
            raise ValidationError(errors)

    def value_label(self) -> str:
        if self.unit == self.Unit.MONEY:
            return f"{self.currency} {self.amount} off"
        if self.unit == self.Unit.SESSIONS:
            return f"{self.sessions} free session{'s' if self.sessions != 1 else ''}"
        return f"{self.percentage.normalize():f} % off"


class CouponCode(models.Model):
    """A code customers type. A campaign's codes are single-use (``max_uses`` 1); a public code
    (``WELCOME``) may be used by many, within the coupon's limits."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="codes")
    code = models.CharField(max_length=40, help_text=_("Stored in capitals; typed in any case."))
    campaign = models.CharField(max_length=80, blank=True,
                                help_text=_("The batch that generated it."))
    max_uses = models.PositiveIntegerField(null=True, blank=True,
                                           help_text=_("Empty: only the coupon's limits."))
    uses_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["coupon", "code"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="couponcode_unique_code"),
            models.CheckConstraint(condition=Q(max_uses__isnull=True)
                                   | Q(uses_count__lte=F("max_uses")),
                                   name="couponcode_uses_within_limit"),
            models.CheckConstraint(condition=Q(code__regex=r"^[A-Z0-9-]{4,40}$"),
                                   name="couponcode_format"),
        ]

    def __str__(self) -> str:
        return self.code


class Redemption(TimeStampedModel):
    """A coupon a customer holds, and what is left of it. When it is used up or expired the
    customer pays the standard price again; what is left never goes below 0."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        USED_UP = "used_up", _("Used up")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    code = models.ForeignKey(CouponCode, on_delete=models.PROTECT, related_name="redemptions")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="redemptions")
    redeemed_at = models.DateTimeField()
    redeemed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    door = models.CharField(max_length=10, default="admin")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    amount_left = models.DecimalField(null=True, blank=True, **MONEY)
    sessions_left = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-redeemed_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_left__isnull=True) | Q(amount_left__gte=0),
                                   name="redemption_amount_left_not_negative"),
        ]
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.code} → {self.customer}"


class Settlement(models.Model):
    """How a rated session was settled: its price, what coupons took off, what prepaid credit
    paid, and what is left to pay. ``amount_due = price − discounts − credit``, all ≥ 0.

    Under reverse charge (``reverse_charge``: a business customer in another EU country with a
    valid VAT number) the customer pays the price excl. VAT: ``price_incl_vat`` then holds that
    payable price, equal to ``price_excl_vat``, and discounts carry no VAT."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    session = models.OneToOneField(ChargingSession, on_delete=models.PROTECT,
                                   related_name="settlement")
    currency = CurrencyField()
    price_incl_vat = models.DecimalField(**MONEY)
    price_excl_vat = models.DecimalField(**MONEY)
    reverse_charge = models.BooleanField(default=False)
    discount_total = models.DecimalField(**MONEY, default=Decimal(0))
    credit_used = models.DecimalField(**MONEY, default=Decimal(0))
    amount_due = models.DecimalField(**MONEY)
    settled_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["operator", "settled_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_total__gte=0, credit_used__gte=0, amount_due__gte=0),
                name="settlement_amounts_not_negative"),
            # ``amount_due = price_incl_vat - discount_total - credit_used`` is checked on
            # PostgreSQL only (migration 0003): SQLite compares sums in floating point.
        ]

    def __str__(self) -> str:
        return f"{self.session}: {self.currency} {self.amount_due} due"


class SessionDiscount(models.Model):
    """One line of what coupons took off a session (shown on the invoice)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="discounts")
    redemption = models.ForeignKey(Redemption, on_delete=models.PROTECT,
                                   related_name="discounts")
    position = models.PositiveSmallIntegerField()
    unit = models.CharField(max_length=12, choices=Coupon.Unit.choices)
    label = models.CharField(max_length=200)
    currency = CurrencyField()
    amount = models.DecimalField(_("amount incl. VAT"), **MONEY)
    amount_excl_vat = models.DecimalField(**MONEY)
    vat = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["settlement", "position"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="discount_positive"),
            # ``amount = amount_excl_vat + vat``: PostgreSQL only (migration 0003).
        ]

    def __str__(self) -> str:
        return f"{self.label}: -{self.amount}"


class Wallet(TimeStampedModel):
    """A customer's prepaid credit in one currency. ``balance`` is the sum of its ledger and the
    sum of what its credit lots have left (a tested invariant); it never goes below 0."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallets")
    currency = CurrencyField()
    balance = models.DecimalField(**MONEY, default=Decimal(0), editable=False)

    class Meta:
        ordering = ["customer", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "currency"],
                                    name="wallet_one_per_customer_currency"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.currency} {self.balance}"


class LedgerEntry(models.Model):
    """One movement of a wallet's credit (append-only). Grants and purchases are credit *lots*
    (``amount`` > 0, ``remaining`` what is left of them); every other entry is negative and
    draws from one lot (``lot``): consumption by a session, expiry, refund, void."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Granted")
        PURCHASE = "purchase", _("Purchased")
        CONSUMPTION = "consumption", _("Used")
        EXPIRY = "expiry", _("Expired")
        REFUND = "refund", _("Refunded")
        VOID = "void", _("Voided")

    class Credit(models.TextChoices):
        GRANTED = "granted", _("Granted")
        PURCHASED = "purchased", _("Purchased")

    LOTS = (Kind.GRANT, Kind.PURCHASE)

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    credit = models.CharField(max_length=10, choices=Credit.choices)
    amount = models.DecimalField(**MONEY)
    remaining = models.DecimalField(**MONEY, null=True, blank=True)
    lot = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                            related_name="draws")
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["wallet", "created_at", "pk"]
        verbose_name_plural = _("ledger entries")
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=["grant", "purchase"], amount__gt=0, lot__isnull=True,
                             remaining__gte=0, remaining__lte=F("amount"))
                           | (~Q(kind__in=["grant", "purchase"]) & Q(
                               amount__lt=0, lot__isnull=False, remaining__isnull=True))),
                name="ledger_lot_or_draw"),
            models.CheckConstraint(
                condition=Q(kind="grant", credit="granted") | Q(kind="purchase",
                                                                credit="purchased")
                | ~Q(kind__in=["grant", "purchase"]),
                name="ledger_credit_matches_kind"),
            models.UniqueConstraint(fields=["wallet", "idempotency_key"],
                                    condition=~Q(idempotency_key=""),
                                    name="ledger_unique_idempotency_key"),
        ]
        indexes = [models.Index(fields=["wallet", "kind", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class TopUp(TimeStampedModel):
    """A driver's request to buy credit, handed to payments. The same idempotency key twice is
    the same request; paid once, it credits the wallet once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="top_ups")
    amount = models.DecimalField(**MONEY)
    idempotency_key = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    payment_reference = models.CharField(max_length=100, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="top_up")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"],
                                    name="topup_unique_idempotency_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="topup_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet.currency} {self.amount} ({self.get_status_display()})"


class Perk(TimeStampedModel):
    """Something a location gives a driver who charges there ("free parking", "a free
    sandwich"), on a condition."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="perks")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="perks")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    min_energy_kwh = models.DecimalField(_("minimum energy (kWh)"), null=True, blank=True,
                                         max_digits=10, decimal_places=4,
                                         validators=[MinValueValidator(Decimal(0))])
    window_start = models.TimeField(null=True, blank=True,
                                    help_text=_("Local time of the location; empty: all day."))
    window_end = models.TimeField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["location", "name"]
        constraints = [models.CheckConstraint(
            condition=(Q(window_start__isnull=True, window_end__isnull=True)
                       | Q(window_start__isnull=False, window_end__isnull=False)),
            name="perk_window_both_or_none")]

    def __str__(self) -> str:
        return f"{self.name} ({self.location})"

    def clean(self) -> None:
        errors = {}
        if self.location_id and self.location.operator_id != self.operator_id:
            errors["location"] = _("The location belongs to another operator.")
        if (self.window_start is None) != (self.window_end is None):
            errors["window_end"] = _("Give both ends of the time window, or neither.")
        if errors:
            raise ValidationError(errors)


class PerkVoucher(models.Model):
    """A perk earned by a session: a code the driver shows, marked used once."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    perk = models.ForeignKey(Perk, on_delete=models.PROTECT, related_name="vouchers")
    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT,
                                related_name="perk_vouchers")
    code = models.CharField(max_length=20)
    issued_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["perk", "session"], name="perkvoucher_one_per_session"),
            models.UniqueConstraint(fields=["operator", "code"], name="perkvoucher_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code
