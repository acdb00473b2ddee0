"""factory_boy factories for the core domain. Each factory keeps rows of one operator together."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator

    code = factory.Sequence(lambda n: f"op-{n}")
    name = factory.Sequence(lambda n: f"Operator {n}")
    ocpi_country_code = "NL"
    ocpi_party_id = factory.Sequence(lambda n: f"{n % 1000:03d}")
    country = "NL"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def finish(self, create, extracted, **kwargs):
        if create:
            self.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    operator = factory.SubFactory(OperatorFactory)
    role = Membership.Role.FINANCE


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    operator = factory.SubFactory(OperatorFactory)
    reference = factory.Sequence(lambda n: f"C{n:05d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    country = "NL"


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    customer = factory.SubFactory(CustomerFactory)
    operator = factory.SelfAttribute("customer.operator")
    uid = factory.Sequence(lambda n: f"{n:014X}")
    contract_id = factory.Sequence(lambda n: f"NL-TST-C{n:08d}")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    operator = factory.SubFactory(OperatorFactory)
    code = factory.Sequence(lambda n: f"LOC-{n}")
    name = factory.Sequence(lambda n: f"Location {n}")
    country = "NL"
    time_zone = "Europe/Amsterdam"


class StationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChargingStation

    location = factory.SubFactory(LocationFactory)
    operator = factory.SelfAttribute("location.operator")
    identity = factory.Sequence(lambda n: f"CS-{n:05d}")


class EvseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evse

    station = factory.SubFactory(StationFactory)
    operator = factory.SelfAttribute("station.operator")
    evse_id = factory.Sequence(lambda n: f"NL*TST*E{n:05d}*1")
    power_type = Evse.PowerType.AC_3_PHASE
    max_power_kw = Decimal("22")


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChargingSession

    evse = factory.SubFactory(EvseFactory)
    operator = factory.SelfAttribute("evse.operator")
    token = factory.SubFactory(TokenFactory, customer__operator=factory.SelfAttribute(
        "...operator"))
    customer = factory.SelfAttribute("token.customer")
    external_id = factory.Sequence(lambda n: f"CDR-{n:07d}")
    start = factory.Sequence(lambda n: datetime(2026, 10, 1, 8, tzinfo=UTC) + timedelta(hours=n))
    end = factory.LazyAttribute(lambda s: s.start + timedelta(hours=2))
    energy_kwh = Decimal("20.5000")
    charging_seconds = 5400
    parking_seconds = 1800
    source = ChargingSession.Source.CSV


# --- tariffs -------------------------------------------------------------------------------
from tariffs.models import (  # noqa: E402
    PriceComponent,
    Tariff,
    TariffElement,
    TariffGroup,
    TariffVersion,
)


class TariffGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffGroup

    operator = factory.SubFactory(OperatorFactory)
    code = factory.Sequence(lambda n: f"group-{n}")
    name = factory.Sequence(lambda n: f"Group {n}")


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    operator = factory.SubFactory(OperatorFactory)
    code = factory.Sequence(lambda n: f"T{n:04d}")
    name = factory.Sequence(lambda n: f"Tariff {n}")
    currency = "EUR"


class TariffVersionFactory(factory.django.DjangoModelFactory):
    """An active version with one element pricing energy at ``energy_price`` per kWh."""

    class Meta:
        model = TariffVersion
        skip_postgeneration_save = True

    tariff = factory.SubFactory(TariffFactory)
    operator = factory.SelfAttribute("tariff.operator")
    number = factory.Sequence(lambda n: n + 1)
    status = TariffVersion.Status.ACTIVE
    valid_from = datetime(2020, 1, 1, tzinfo=UTC)

    @factory.post_generation
    def energy_price(self, create, extracted, **kwargs):
        if not create:
            return
        element = TariffElement.objects.create(version=self, position=0)
        PriceComponent.objects.create(element=element, type="ENERGY",
                                      price=extracted if extracted is not None
                                      else Decimal("0.30"), vat=Decimal("21"), step_size=1)
