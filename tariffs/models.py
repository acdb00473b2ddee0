"""Tariffs in the OCPI 2.2.1 model, their versions and assignments, tariff groups, price indices
and the price of each rated session.

A ``Tariff`` is the identity an operator refers to (its OCPI id); what it charges lives in its
``TariffVersion`` rows. A version is edited while it is a draft; once active it never changes: a
price change is a new version, so a session keeps the exact version that priced it. Which tariff
applies to a session is decided by ``TariffAssignment`` rows at network (macro), region or
location (meso) and station or EVSE (micro) level (see ``docs/pricing.md``).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import CurrencyField, MoneyField

from emobility.db import ExactJSONDecoder, ExactJSONEncoder
from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Operator,
    TimeStampedModel,
)

validate_hhmm = RegexValidator(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", _("Use 24-hour HH:MM."))


class TariffGroup(TimeStampedModel):
    """A kind of customer priced alike: individuals, fleets, private, public or the operator's
    own grouping."""

    class Kind(models.TextChoices):
        INDIVIDUALS = "individuals", _("Individuals")
        FLEETS = "fleets", _("Fleets")
        PRIVATE = "private", _("Private")
        PUBLIC = "public", _("Public")
        CUSTOM = "custom", _("Operator-defined")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="tariff_groups")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CUSTOM)

    class Meta:
        ordering = ["operator", "name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="tariffgroup_unique_code"),
        ]

    def __str__(self) -> str:
        return self.name


class CustomerTariffGroup(TimeStampedModel):
    """The tariff group a customer belongs to at its operator (one per customer)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE,
                                    related_name="tariff_group_membership")
    group = models.ForeignKey(TariffGroup, on_delete=models.PROTECT, related_name="members")

    class Meta:
        verbose_name = _("customer tariff group")

    def __str__(self) -> str:
        return f"{self.customer} → {self.group}"

    def clean(self) -> None:
        if self.customer_id and self.customer.operator_id != self.operator_id:
            raise ValidationError({"customer": _("The customer belongs to another operator.")})
        if self.group_id and self.group.operator_id != self.operator_id:
            raise ValidationError({"group": _("The group belongs to another operator.")})


class Tariff(TimeStampedModel):
    """A tariff's identity (OCPI ``id``) at an operator. Its prices live in its versions."""

    class Type(models.TextChoices):
        AD_HOC_PAYMENT = "AD_HOC_PAYMENT", _("Ad hoc payment")
        PROFILE_CHEAP = "PROFILE_CHEAP", _("Profile: cheap")
        PROFILE_FAST = "PROFILE_FAST", _("Profile: fast")
        PROFILE_GREEN = "PROFILE_GREEN", _("Profile: green")
        REGULAR = "REGULAR", _("Regular")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="tariffs")
    code = models.CharField(_("tariff id"), max_length=36,
                            help_text=_("The OCPI tariff id, unique at the operator."))
    name = models.CharField(max_length=200)
    currency = CurrencyField(default="EUR")
    type = models.CharField(_("OCPI type"), max_length=20, choices=Type.choices, blank=True)

    class Meta:
        ordering = ["operator", "code"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="tariff_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"


class TariffVersion(TimeStampedModel):
    """One immutable-once-active set of prices of a tariff.

    Active and retired versions are never edited (services refuse, the admin shows them read-only).
    A version prices sessions that start in ``[valid_from, valid_to)``; activating a new version
    closes the previous one at the new one's ``valid_from``.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    valid_from = models.DateTimeField(null=True, blank=True,
                                      help_text=_("OCPI start_date_time; set on activation."))
    valid_to = models.DateTimeField(null=True, blank=True,
                                    help_text=_("OCPI end_date_time; open-ended when empty."))
    min_price_excl_vat = models.DecimalField(max_digits=14, decimal_places=6, null=True,
                                             blank=True)
    min_price_incl_vat = models.DecimalField(max_digits=14, decimal_places=6, null=True,
                                             blank=True)
    max_price_excl_vat = models.DecimalField(max_digits=14, decimal_places=6, null=True,
                                             blank=True)
    max_price_incl_vat = models.DecimalField(max_digits=14, decimal_places=6, null=True,
                                             blank=True)
    tariff_alt_text = models.JSONField(default=list, blank=True, encoder=ExactJSONEncoder,
                                       decoder=ExactJSONDecoder,
                                       help_text=_('[{"language": "en", "text": "..."}]'))
    tariff_alt_url = models.URLField(blank=True)
    energy_mix = models.JSONField(null=True, blank=True, encoder=ExactJSONEncoder,
                                  decoder=ExactJSONDecoder)
    ocpi_extra = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder,
                                  decoder=ExactJSONDecoder,
                                  help_text=_("OCPI fields kept as received (country_code, "
                                              "party_id, last_updated)."))
    note = models.CharField(_("change note"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tariff", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "number"],
                                    name="tariffversion_unique_number"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_from__isnull=True)
                | Q(valid_to__gt=models.F("valid_from")),
                name="tariffversion_valid_window"),
            models.CheckConstraint(condition=~Q(status="active") | Q(valid_from__isnull=False),
                                   name="tariffversion_active_has_start"),
        ]
        indexes = [models.Index(fields=["tariff", "status", "valid_from"])]

    def __str__(self) -> str:
        return f"{self.tariff.code} v{self.number} ({self.get_status_display()})"

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class TariffElement(models.Model):
    """An OCPI TariffElement: price components that apply while all restrictions hold."""

    class Reservation(models.TextChoices):
        RESERVATION = "RESERVATION", _("Reservation")
        RESERVATION_EXPIRES = "RESERVATION_EXPIRES", _("Reservation expires")

    version = models.ForeignKey(TariffVersion, on_delete=models.CASCADE, related_name="elements")
    position = models.PositiveSmallIntegerField(help_text=_("Order in the tariff (first wins)."))
    start_time = models.CharField(max_length=5, blank=True, validators=[validate_hhmm])
    end_time = models.CharField(max_length=5, blank=True, validators=[validate_hhmm])
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True, help_text=_("Exclusive."))
    min_kwh = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    max_kwh = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    min_current = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_current = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    min_power = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_power = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    min_duration = models.PositiveIntegerField(_("min duration (s)"), null=True, blank=True)
    max_duration = models.PositiveIntegerField(_("max duration (s)"), null=True, blank=True)
    days_of_week = models.JSONField(default=list, blank=True,
                                    help_text=_('e.g. ["MONDAY", "TUESDAY"]; empty = every day'))
    reservation = models.CharField(max_length=20, choices=Reservation.choices, blank=True)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"],
                                    name="tariffelement_unique_position"),
        ]

    def __str__(self) -> str:
        return f"element {self.position + 1}"


class PriceIndex(TimeStampedModel):
    """A market price index (e.g. a day-ahead electricity price zone), per kWh excl. VAT, in
    intervals of 15 or 60 minutes."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="price_indices")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    market_zone = models.CharField(max_length=40, blank=True, help_text=_("e.g. NL, BE"))
    currency = CurrencyField(default="EUR")
    interval_minutes = models.PositiveSmallIntegerField(
        choices=[(15, "15 minutes"), (60, "60 minutes")], default=60)

    class Meta:
        verbose_name_plural = _("price indices")
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="priceindex_unique_code"),
        ]

    def __str__(self) -> str:
        return self.name


class PriceIndexValue(models.Model):
    """The index price per kWh (excl. VAT) for the interval starting at ``start`` (UTC)."""

    index = models.ForeignKey(PriceIndex, on_delete=models.CASCADE, related_name="values")
    start = models.DateTimeField()
    price = models.DecimalField(max_digits=12, decimal_places=6)

    class Meta:
        ordering = ["index", "start"]
        constraints = [
            models.UniqueConstraint(fields=["index", "start"], name="priceindexvalue_unique_start"),
        ]

    def __str__(self) -> str:
        return f"{self.index.code} {self.start:%Y-%m-%d %H:%M} {self.price}"


class PriceComponent(models.Model):
    """An OCPI PriceComponent. An ENERGY component may follow a price index instead of a fixed
    price: per interval, price = clamp(index × (1 + pct/100) + abs, floor, cap)."""

    class Type(models.TextChoices):
        ENERGY = "ENERGY", _("Energy (per kWh)")
        FLAT = "FLAT", _("Flat (per session)")
        PARKING_TIME = "PARKING_TIME", _("Parking time (per hour)")
        TIME = "TIME", _("Charging time (per hour)")

    element = models.ForeignKey(TariffElement, on_delete=models.CASCADE,
                                related_name="components")
    position = models.PositiveSmallIntegerField(default=0)
    type = models.CharField(max_length=20, choices=Type.choices)
    price = models.DecimalField(_("price excl. VAT"), max_digits=14, decimal_places=6,
                                validators=[MinValueValidator(0)])
    vat = models.DecimalField(_("VAT %"), max_digits=5, decimal_places=2, null=True, blank=True,
                              validators=[MinValueValidator(0), MaxValueValidator(100)])
    step_size = models.PositiveIntegerField(default=1, help_text=_(
        "Wh for ENERGY, seconds for TIME and PARKING_TIME, 1 for FLAT."))
    price_index = models.ForeignKey(PriceIndex, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="components")
    index_markup_abs = models.DecimalField(max_digits=12, decimal_places=6, null=True,
                                           blank=True)
    index_markup_pct = models.DecimalField(max_digits=7, decimal_places=3, null=True,
                                           blank=True)
    index_floor = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    index_cap = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["element", "position"]
        constraints = [
            models.UniqueConstraint(fields=["element", "position"],
                                    name="pricecomponent_unique_position"),
            models.CheckConstraint(condition=Q(price_index__isnull=True) | Q(type="ENERGY"),
                                   name="pricecomponent_index_only_for_energy"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.price}"


class TariffAssignment(TimeStampedModel):
    """Which tariff applies where, for whom and when.

    Resolution for a session (most specific level first): EVSE, station, location, region,
    network. At one level an assignment for the customer's tariff group beats one without a
    group; among several, the latest ``valid_from`` wins.
    """

    class Level(models.TextChoices):
        EVSE = "evse", _("EVSE (micro)")
        STATION = "station", _("Station (micro)")
        LOCATION = "location", _("Location (meso)")
        REGION = "region", _("Region (meso)")
        NETWORK = "network", _("Network (macro)")

    #: resolution order, most specific first
    ORDER = [Level.EVSE, Level.STATION, Level.LOCATION, Level.REGION, Level.NETWORK]

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT,
                                 related_name="tariff_assignments")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="assignments")
    level = models.CharField(max_length=10, choices=Level.choices)
    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, null=True,
                                blank=True, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="+")
    region = models.CharField(max_length=100, blank=True)
    tariff_group = models.ForeignKey(TariffGroup, on_delete=models.PROTECT, null=True,
                                     blank=True, related_name="assignments",
                                     help_text=_("Empty: applies to every customer."))
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["operator", "level", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(level="evse", evse__isnull=False, station__isnull=True,
                      location__isnull=True, region="")
                    | Q(level="station", evse__isnull=True, station__isnull=False,
                        location__isnull=True, region="")
                    | Q(level="location", evse__isnull=True, station__isnull=True,
                        location__isnull=False, region="")
                    | Q(level="region", evse__isnull=True, station__isnull=True,
                        location__isnull=True) & ~Q(region="")
                    | Q(level="network", evse__isnull=True, station__isnull=True,
                        location__isnull=True, region="")
                ),
                name="tariffassignment_target_matches_level"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="tariffassignment_valid_window"),
        ]
        indexes = [models.Index(fields=["operator", "valid_from"])]

    def __str__(self) -> str:
        return f"{self.tariff.code} @ {self.get_level_display()} {self.target_label}"

    @property
    def target_label(self) -> str:
        if self.level == self.Level.EVSE:
            return str(self.evse)
        if self.level == self.Level.STATION:
            return str(self.station)
        if self.level == self.Level.LOCATION:
            return str(self.location)
        if self.level == self.Level.REGION:
            return self.region
        return str(self.operator)

    def clean(self) -> None:
        errors = {}
        for field in ("tariff", "evse", "station", "location", "tariff_group"):
            related = getattr(self, field, None)
            if related is not None and related.operator_id != self.operator_id:
                errors[field] = _("This belongs to another operator.")
        target = {"evse": self.evse_id, "station": self.station_id,
                  "location": self.location_id, "region": self.region}
        if self.level in target and not target[self.level]:
            errors[self.level] = _("Choose the %(level)s this assignment is for.") % {
                "level": self.level}
        for field, value in target.items():
            if field != self.level and value:
                errors[field] = _("Only the %(level)s is set for a %(level)s assignment.") % {
                    "level": self.level}
        if self.valid_to and self.valid_from and self.valid_to <= self.valid_from:
            errors["valid_to"] = _("The end must come after the start.")
        if errors:
            raise ValidationError(errors)


class RatingRun(models.Model):
    """One call of the rating service: who or what started it, on which sessions, and what came
    of it. Long runs update their counts as they go (the progress shown in the admin)."""

    class Trigger(models.TextChoices):
        IMPORT = "import", _("After an import")
        TASK = "task", _("Scheduled / background task")
        ADMIN = "admin", _("Admin action")
        RERATE = "rerate", _("Explicit re-rating")
        COMMAND = "command", _("Management command")
        DEMO = "demo", _("Demo data")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+", help_text=_("Empty: several operators."))
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    reason = models.CharField(max_length=300, blank=True)
    sessions_total = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0, help_text=_("Not in a status this run may rate (e.g. invoiced), or being "
                               "rated by another run."))
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"rating run #{self.pk} ({self.get_trigger_display()})"

    @property
    def progress(self) -> int:
        """Percent of the sessions handled so far."""
        if not self.sessions_total:
            return 100 if self.status != self.Status.RUNNING else 0
        done = self.rated + self.failed + self.skipped
        return min(100, done * 100 // self.sessions_total)


class SessionPrice(models.Model):
    """The rating of one session: the exact tariff version that priced it, how that tariff was
    chosen, the breakdown per dimension and the totals (rounded once, half-up).

    A session has at most one current price. Re-rating writes a new row and keeps the old one
    (``is_current`` false), so every price a session ever had stays readable."""

    session = models.ForeignKey(ChargingSession, on_delete=models.CASCADE,
                                related_name="prices")
    # indexed as the first column of (operator, rated_at)
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+",
                                 db_index=False)
    is_current = models.BooleanField(default=True)
    rating_run = models.ForeignKey(RatingRun, on_delete=models.PROTECT, related_name="prices")
    tariff_version = models.ForeignKey(
        TariffVersion, on_delete=models.PROTECT, related_name="session_prices", null=True,
        blank=True, help_text=_("Empty for a retail price made from the operator's cost."))
    assignment = models.ForeignKey(TariffAssignment, on_delete=models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    level = models.CharField(max_length=10, choices=[*TariffAssignment.Level.choices,
                                                     ("retail", _("Retail plan"))])
    retail_plan = models.ForeignKey("RetailPlan", on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="session_prices")
    retail_subscription = models.ForeignKey("RetailSubscription", on_delete=models.PROTECT,
                                            null=True, blank=True, related_name="+")
    cost_excl_vat = models.DecimalField(
        _("operator's cost excl. VAT"), max_digits=14, decimal_places=2, null=True,
        blank=True, help_text=_("What the session cost the provider (retail prices)."))
    explanation = models.CharField(max_length=500)
    total_excl_vat = MoneyField(max_digits=14, decimal_places=2, default_currency="EUR")
    total_vat = MoneyField(max_digits=14, decimal_places=2, default_currency="EUR")
    total_incl_vat = MoneyField(max_digits=14, decimal_places=2, default_currency="EUR")
    breakdown = models.JSONField()
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session"], condition=Q(is_current=True),
                                    name="sessionprice_one_current_per_session"),
            models.CheckConstraint(
                condition=Q(tariff_version__isnull=False) | Q(retail_plan__isnull=False),
                name="sessionprice_tariff_or_retail_plan"),
        ]
        indexes = [models.Index(fields=["operator", "rated_at"]),
                   models.Index(fields=["retail_plan", "rated_at"],
                                condition=Q(retail_plan__isnull=False, is_current=True),
                                name="sessionprice_retail_current")]

    def __str__(self) -> str:
        return f"{self.session} {self.total_incl_vat}"


class TariffAuditEntry(models.Model):
    """Who changed which tariff, how and when (append-only)."""

    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        IMPORTED = "imported", _("Imported from OCPI")
        DRAFTED = "drafted", _("New draft version")
        EDITED = "edited", _("Draft edited")
        ACTIVATED = "activated", _("Activated")
        RETIRED = "retired", _("Retired")
        ASSIGNED = "assigned", _("Assigned")
        UNASSIGNED = "unassigned", _("Assignment ended")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="audit_entries")
    version = models.ForeignKey(TariffVersion, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = _("tariff audit entries")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.tariff.code} {self.action}"


class RetailPlan(TimeStampedModel):
    """A way a mobility service provider sells charging to its drivers, at its own and at other
    operators' stations (docs/retail.md): a monthly fee, a price rule and a scope. The default
    plan (pay as you go) prices what no subscribed plan covers."""

    class Rule(models.TextChoices):
        MARKUP = "markup", _("Mark-up on the operator's cost")
        TARIFF = "tariff", _("Fixed retail tariff (OCPI)")
        ALLOWANCE = "allowance", _("Included kWh per month, then a rate above")

    class Power(models.TextChoices):
        ANY = "any", _("Any charger")
        AC = "ac", _("AC only")
        DC = "dc", _("DC rapid only")
        MIN_KW = "min_kw", _("At least a power (kW)")

    class Network(models.TextChoices):
        ANY = "any", _("Own network and roaming")
        OWN = "own", _("Own network only")
        ROAMING = "roaming", _("Roaming only")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT,
                                 related_name="retail_plans")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    currency = CurrencyField(default="EUR")
    is_default = models.BooleanField(_("default (pay as you go)"), default=False, help_text=_(
        "Prices the sessions that no subscribed plan covers; nobody subscribes to it."))
    active = models.BooleanField(default=True)
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2, default=0,
                                      validators=[MinValueValidator(0)])
    fee_vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=21,
                                       validators=[MinValueValidator(0), MaxValueValidator(100)])
    rule = models.CharField(max_length=10, choices=Rule.choices, default=Rule.MARKUP)
    vat_rate = models.DecimalField(_("VAT rate of session prices"), max_digits=5,
                                   decimal_places=2, default=21,
                                   validators=[MinValueValidator(0), MaxValueValidator(100)])
    markup_percent = models.DecimalField(max_digits=7, decimal_places=3, default=0,
                                         validators=[MinValueValidator(-100)])
    markup_per_kwh = models.DecimalField(max_digits=9, decimal_places=4, default=0)
    markup_per_session = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+", help_text=_("The retail tariff (rule: tariff)."))
    included_kwh = models.DecimalField(max_digits=10, decimal_places=4, default=0,
                                       validators=[MinValueValidator(0)])
    included_price_per_kwh = models.DecimalField(max_digits=9, decimal_places=4, default=0,
                                                 validators=[MinValueValidator(0)])
    over_price_per_kwh = models.DecimalField(max_digits=9, decimal_places=4, default=0,
                                             validators=[MinValueValidator(0)])
    scope_countries = models.JSONField(default=list, blank=True, help_text=_(
        'ISO country codes, e.g. ["NL", "BE"]; empty: every country.'))
    scope_regions = models.JSONField(default=list, blank=True, help_text=_(
        'Regions as the locations name them, e.g. ["Noord-Holland"]; empty: every region.'))
    scope_power = models.CharField(max_length=8, choices=Power.choices, default=Power.ANY)
    scope_min_kw = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    scope_network = models.CharField(max_length=8, choices=Network.choices,
                                     default=Network.ANY)
    scope_tariff_groups = models.ManyToManyField(TariffGroup, blank=True, related_name="+")

    class Meta:
        ordering = ["operator", "name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="retailplan_unique_code"),
            models.UniqueConstraint(fields=["operator", "currency"],
                                    condition=Q(is_default=True, active=True),
                                    name="retailplan_one_default_per_currency"),
            models.CheckConstraint(condition=~Q(rule="tariff") | Q(tariff__isnull=False),
                                   name="retailplan_tariff_rule_has_tariff"),
            models.CheckConstraint(condition=~Q(scope_power="min_kw")
                                   | Q(scope_min_kw__gt=0), name="retailplan_min_kw_given"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.rule == self.Rule.TARIFF and not self.tariff_id:
            errors["tariff"] = _("A fixed retail tariff plan needs its tariff.")
        if self.tariff_id and self.tariff.operator_id != self.operator_id:
            errors["tariff"] = _("The tariff belongs to another operator.")
        if self.scope_power == self.Power.MIN_KW and not self.scope_min_kw:
            errors["scope_min_kw"] = _("Give the least power (kW) the plan covers.")
        if self.rule == self.Rule.ALLOWANCE and self.included_kwh <= 0:
            errors["included_kwh"] = _("An allowance plan includes some kWh per month.")
        for name in ("scope_countries", "scope_regions"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip()
                                                      for v in value):
                errors[name] = _('A list of names, e.g. ["NL"]; [] for all.')
        if isinstance(self.scope_countries, list) and not all(
                isinstance(v, str) and len(v) == 2 and v.isalpha() and v.isupper()
                for v in self.scope_countries):
            errors.setdefault("scope_countries", _("Use ISO 3166 alpha-2 codes such as NL."))
        if errors:
            raise ValidationError(errors)


class RetailSubscription(TimeStampedModel):
    """A customer's subscription to a plan from ``starts_on`` to ``ends_on`` (its last day,
    included; empty: until ended). Switching plans is ending one and starting another; the
    monthly fee is prorated by days (docs/retail.md)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT,
                                 related_name="retail_subscriptions")
    plan = models.ForeignKey(RetailPlan, on_delete=models.PROTECT, related_name="subscriptions")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text=_("The last day, included."))

    class Meta:
        ordering = ["customer", "starts_on"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__isnull=True)
                                   | Q(ends_on__gte=models.F("starts_on")),
                                   name="retailsubscription_ends_after_start"),
        ]
        indexes = [models.Index(fields=["customer", "starts_on"])]

    def __str__(self) -> str:
        return f"{self.customer} → {self.plan} from {self.starts_on}"

    def clean(self) -> None:
        errors = {}
        if self.customer_id and self.customer.operator_id != self.operator_id:
            errors["customer"] = _("The customer belongs to another operator.")
        if self.plan_id and self.plan.operator_id != self.operator_id:
            errors["plan"] = _("The plan belongs to another operator.")
        if self.plan_id and self.plan.is_default:
            errors["plan"] = _("Nobody subscribes to the default plan: it applies by itself.")
        if self.ends_on and self.starts_on and self.ends_on < self.starts_on:
            errors["ends_on"] = _("A subscription ends on or after the day it starts.")
        if errors:
            raise ValidationError(errors)


class AllowanceUsage(models.Model):
    """The included kWh a subscription has used in one month (locked while sessions are
    priced, so sessions rated at once never use the same kWh twice)."""

    subscription = models.ForeignKey(RetailSubscription, on_delete=models.CASCADE,
                                     related_name="usage")
    month = models.DateField(help_text=_("The first day of the month."))
    used_kwh = models.DecimalField(max_digits=14, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "month"],
                                    name="allowanceusage_one_per_month"),
            models.CheckConstraint(condition=Q(used_kwh__gte=0),
                                   name="allowanceusage_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.month:%Y-%m}: {self.used_kwh} kWh"
