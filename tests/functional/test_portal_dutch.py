"""The portal in Dutch: the network, tariffs, sessions and invoices pages answer with the Dutch
catalogue's texts (headings, columns, menu, filters, messages), whichever way the language was
chosen (the header's switch, the language cookie, the browser's Accept-Language), and none of
their templates' own English texts is left on the page."""

import html
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from tests.factories import MembershipFactory

from .invoices_helpers import book

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
TRANSLATE = re.compile(r"""\{%\s*translate\s+(["'])(.+?)\1\s*%\}""")


@pytest.fixture
def books():
    return {"a": book("alpha"), "b": book("bravo")}


@pytest.fixture
def manager(client, books):
    user = MembershipFactory(operator=books["a"].operator, role="manager").user
    client.force_login(user)
    return client


def dutch(client, url, status=200, **params):
    """A portal page asked for with the language cookie set to Dutch."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "nl"
    response = client.get(url, params)
    assert response.status_code == status
    body = response.content.decode()
    assert '<html lang="nl"' in body
    return html.unescape(body)


def english_left(body, *templates):
    """The `{% translate %}` texts of these templates (and the portal's frame) that have a Dutch
    translation different from the English but still appear in English on the page. Texts of one
    word are left out: a name or code on the page could contain them."""
    left = []
    for name in ("portal/base.html", *templates):
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        for _, english in TRANSLATE.findall(source):
            with translation.override("nl"):
                translated = translation.gettext(english)
            if " " in english and translated != english and english in body:
                left.append(english)
    return left


def test_the_header_switch_makes_the_network_page_dutch(manager, books):
    response = manager.post(reverse("portal:set_language"),
                            {"language": "nl", "next": reverse("portal:network")})
    assert response.status_code == 302 and response.url == reverse("portal:network")
    page = manager.get(reverse("portal:network"))
    body = html.unescape(page.content.decode())
    assert '<html lang="nl"' in body
    location = books["a"].shop.evse.station.location
    for text in ("<title>Netwerk", ">Netwerk <span", "<h2>Locaties</h2>", ">Plaats</th>",
                 ">Tijdzone</th>", ">Laadstations</th>", ">Laadpunten</th>", ">Zoeken</button>",
                 f"Sessies op {location.name}", ">Uitloggen<", "Naar de inhoud"):
        assert text in body, text
    # the menu of every area, from the pages' NAV labels
    for label in ("Tarieven", "Sessies", "Facturen", "Betalingen", "Aanmaningen", "Netwerk"):
        assert f">{label}</a>" in body, label
    assert "bravo" not in body.lower()
    assert english_left(body, "portal/network/list.html") == []


def test_a_location_page_in_dutch(manager, books):
    location = books["a"].shop.evse.station.location
    body = dutch(manager, reverse("portal:network_location", args=[location.pk]))
    assert "Sessies op deze locatie" in body
    assert "Laadstations en laadpunten" in body
    assert "Het tarief dat een sessie prijst die nu begint" in body
    assert english_left(body, "portal/network/location.html") == []


def test_the_tariffs_page_in_dutch(manager, books):
    body = dutch(manager, reverse("portal:tariffs"))
    for text in ("<title>Tarieven", "<h1>Tarieven</h1>", ">Nieuw tarief</a>", ">Tarief-id</th>",
                 ">Valuta</th>", ">Nu geldig</th>", ">Versies</th>", ">Toewijzingen</th>",
                 "Tijden in ", "Een tarief rekent wat de geldende versie zegt",
                 "Tarieven en de versie die nu geldt"):
        assert text in body, text
    assert re.search(r"v\d+ sinds \d{4}-\d\d-\d\d \d\d:\d\d", body)
    assert "bravo" not in body.lower()
    assert english_left(body, "portal/tariffs/list.html") == []


def test_a_tariff_page_in_dutch(manager, books):
    tariff = books["a"].operator.tariffs.get()
    body = dutch(manager, reverse("portal:tariff", args=[tariff.pk]))
    assert "Versies" in body and "Toewijzingen" in body and "Prijzen (excl. btw)" in body
    assert english_left(body, "portal/tariffs/detail.html") == []


def test_the_sessions_page_in_dutch_from_the_browser_language(client, books):
    user = MembershipFactory(operator=books["a"].operator, role="viewer").user
    client.force_login(user)
    response = client.get(reverse("portal:sessions"), {"first": "2026-10-01",
                                                       "last": "2026-10-31"},
                          headers={"accept-language": "nl-NL,nl;q=0.9,en;q=0.5"})
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert '<html lang="nl"' in body
    for text in ("<title>Sessies", ">Start (lokale tijd)</th>", ">Laadstation / laadpunt</th>",
                 ">Prijs incl. btw</th>", ">Klant</th>", ">Exporteren als CSV<",
                 "Datums zijn hele dagen in de tijdzone van de locatie van elke sessie",
                 ">De filters wissen<", "Verrekend", "Gefactureerd"):
        assert text in body, text
    assert "Settled" not in body and "Invoiced" not in body
    assert "bravo" not in body.lower()
    assert english_left(body, "portal/sessions/list.html") == []


def test_a_sessions_filter_error_in_dutch(manager):
    body = dutch(manager, reverse("portal:sessions"), status=400, first="2026-10-31",
                 last="2026-10-01")
    assert "Verbeter de filters:" in body
    assert "De einddatum mag niet voor de begindatum liggen." in body


def test_the_invoices_page_in_dutch(manager, books):
    a = books["a"]
    body = dutch(manager, reverse("portal:invoices"))
    for text in ("<title>Facturen", "<h1>Facturen", ">Nummer</th>", ">Soort</th>",
                 ">Klant</th>", ">Periode</th>", ">Vervaldatum</th>", ">Te betalen</th>",
                 ">Filteren</button>", "Alleen vergoedingsoverzichten",
                 "Facturen, creditnota's en vergoedingsoverzichten van uw netwerk.",
                 "Creditnota", "Vergoedingsoverzicht", f"Concept #{a.draft.pk}",
                 "5 documenten"):
        assert text in body, text
    assert a.invoice.number in body
    assert "Credit note" not in body and "Draft #" not in body
    assert "bravo" not in body.lower()
    assert english_left(body, "portal/invoices/list.html", "portal/invoices/_table.html",
                        "portal/invoices/_filters.html") == []


def test_an_invoice_page_in_dutch(manager, books):
    a = books["a"]
    body = dutch(manager, reverse("portal:invoice", args=[a.invoice.pk]))
    for text in ("Regels", "Btw per tarief", "Totalen", "De PDF van", "Factuurdatum"):
        assert text in body, text
    draft = dutch(manager, reverse("portal:invoice", args=[a.draft.pk]))
    assert "Dit is een concept: het heeft nog geen nummer en geen PDF." in draft
    assert english_left(body, "portal/invoices/detail.html") == []


def test_another_operators_invoice_is_a_404_in_dutch_too(manager, books):
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "nl"
    response = manager.get(reverse("portal:invoice", args=[books["b"].invoice.pk]))
    assert response.status_code == 404
    assert "bravo" not in response.content.decode().lower()


def test_english_stays_english(manager, books):
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    body = html.unescape(manager.get(reverse("portal:invoices")).content.decode())
    assert '<html lang="en"' in body
    assert "Reimbursement statements only" in body and "Alleen vergoedingsoverzichten" not in body
    # the check used on the Dutch pages finds English texts when there are some
    left = english_left(body, "portal/invoices/list.html", "portal/invoices/_filters.html")
    assert "Reimbursement statements only" in left and "Clear the filters" in left
