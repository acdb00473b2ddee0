"""Every portal page, as a screen reader and a keyboard meet it: walked from the URL conf (a new
page is checked without being listed here), read as operator A's manager in English and in
Dutch, with A's rows filled in from the isolation cases (tests/functional/isolation/).

On every page: each form control (not hidden, submit or button inputs) has a name a screen
reader reads (a ``<label for>``, an enclosing ``<label>``, ``aria-label`` or
``aria-labelledby``); ids are unique and every id a label or an ARIA attribute names exists;
one ``h1``; every image has ``alt``; links and buttons have a text; tables sit in a
``.table-wrap`` (they scroll on a phone instead of widening the page); ``<main id="main">``
(the skip link's target) and ``<html lang>`` in the language asked for.
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.functional.isolation import OBJECT, all_cases
from tests.functional.isolation.world import World, build_world

#: portal URL names that answer no page of their own: downloads, a fragment htmx swaps in, and
#: the POST-only actions (a redirect). A new name answering something else than a page must
#: be added here on purpose.
NOT_PAGES = {
    "logout": "POST only: logs out and redirects",
    "operator_switch": "POST only: switches the operator and redirects",
    "set_language": "POST only: sets the language and redirects",
    "sessions_export": "a CSV download",
    "import_progress": "a fragment of the import page, swapped in by htmx",
    "import_errors": "a CSV download",
    "invoice_pdf": "a PDF download",
}
#: pages a signed-in user is sent away from
ANONYMOUS_ONLY = {"login"}
#: kinds the walk must reach (a list and a detail of each), so an empty walk cannot pass
MUST_SEE = {"dashboard", "network", "network_location", "tariffs", "tariff", "tariff_create",
            "tariff_version_new", "tariff_builder", "tariff_assign", "simulator", "sessions",
            "session", "imports", "import", "invoices", "invoice", "statements", "coupons",
            "coupon", "wallets", "wallet", "payments", "payment", "dunning", "dunning_case",
            "settings", "password_change", "login"}
LABELLED_INPUTS_EXEMPT = {"hidden", "submit", "button", "reset", "image"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict
    text: list[str] = field(default_factory=list)


class PageAudit(HTMLParser):
    """Reads one page and lists what is wrong with it (``problems``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = []
        self.ids: dict[str, int] = {}
        self.label_for: list[str] = []
        self.referenced: list[tuple[str, str, str]] = []  # (attribute, id, element)
        self.controls: list[Element] = []  # controls outside any label
        self.h1 = 0
        self.mains: list[dict] = []
        self.html_lang = None
        self.problems: list[str] = []

    # the parser's hooks
    def handle_starttag(self, tag, attrs):
        attributes = {name: (value or "") for name, value in attrs}
        element = Element(tag, attributes)
        self.element(element)
        if tag in VOID:
            self.finish(element)
        else:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        element = Element(tag, {name: (value or "") for name, value in attrs})
        self.element(element)
        self.finish(element)

    def handle_endtag(self, tag):
        if not any(open_.tag == tag for open_ in self.stack):
            return  # a stray end tag: the browser ignores it too
        while self.stack:
            element = self.stack.pop()
            self.finish(element)
            if element.tag == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element.text.append(data)

    # the checks
    def inside(self, tag=None, css_class=None) -> bool:
        for element in self.stack:
            if tag and element.tag != tag:
                continue
            if css_class and css_class not in element.attrs.get("class", "").split():
                continue
            return True
        return False

    def element(self, element: Element) -> None:
        tag, attrs = element.tag, element.attrs
        if "id" in attrs:
            self.ids[attrs["id"]] = self.ids.get(attrs["id"], 0) + 1
        for attribute in ("aria-labelledby", "aria-describedby", "aria-controls"):
            for ref in attrs.get(attribute, "").split():
                self.referenced.append((attribute, ref, describe(element)))
        if tag == "html":
            self.html_lang = attrs.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "main":
            self.mains.append(attrs)
        elif tag == "label" and attrs.get("for"):
            self.label_for.append(attrs["for"])
            self.referenced.append(("label for", attrs["for"], describe(element)))
        elif tag == "img":
            if "alt" not in attrs:
                self.problems.append(f"an image without alt: {describe(element)}")
            for open_ in self.stack:  # an image's text is its alt
                open_.text.append(attrs.get("alt", ""))
        elif tag == "table" and not self.inside(css_class="table-wrap"):
            self.problems.append(f"a table outside a .table-wrap: {describe(element)}")
        if is_control(element) and not self.inside("label"):
            self.controls.append(element)

    def finish(self, element: Element) -> None:
        if element.tag in ("a", "button") and (element.tag == "button"
                                               or "href" in element.attrs):
            named = "".join(element.text).strip() or any(
                element.attrs.get(name, "").strip()
                for name in ("aria-label", "aria-labelledby", "title"))
            if not named:
                self.problems.append(f"an empty <{element.tag}>: {describe(element)}")

    def close(self):
        super().close()
        for id_, count in self.ids.items():
            if count > 1:
                self.problems.append(f'the id "{id_}" is used {count} times')
        for attribute, ref, where in self.referenced:
            if ref not in self.ids:
                self.problems.append(f'{attribute} names the id "{ref}", which is missing '
                                     f"({where})")
        labelled = set(self.label_for)
        for control in self.controls:
            attrs = control.attrs
            if attrs.get("id") in labelled:
                continue
            if attrs.get("aria-label", "").strip() or attrs.get("aria-labelledby", "").strip():
                continue
            self.problems.append(f"a control without a label: {describe(control)}")
        if self.h1 != 1:
            self.problems.append(f"{self.h1} h1 elements (one expected)")
        if [attrs.get("id") for attrs in self.mains] != ["main"]:
            self.problems.append(f'not one <main id="main">: {self.mains}')
        if not self.html_lang:
            self.problems.append("<html> has no lang")


def is_control(element: Element) -> bool:
    if element.tag in ("select", "textarea"):
        return True
    return (element.tag == "input"
            and element.attrs.get("type", "text").lower() not in LABELLED_INPUTS_EXEMPT)


def describe(element: Element) -> str:
    shown = " ".join(f'{k}="{v}"' for k, v in element.attrs.items()
                     if k in ("id", "name", "type", "class", "href"))
    return f"<{element.tag} {shown}>".replace(" >", ">")


def audit(html: str) -> list[str]:
    parser = PageAudit()
    parser.feed(html)
    parser.close()
    return parser.problems


def portal_patterns() -> list[tuple[str, URLPattern]]:
    """Every pattern of the ``portal`` namespace, as the URL conf has it."""
    found = []

    def walk(patterns, current):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or current)
            elif isinstance(entry, URLPattern) and current == "portal":
                found.append((entry.name, entry))

    walk(get_resolver().url_patterns, None)
    return found


def swapped(world: World) -> World:
    """The world with A in B's place: an isolation case's ``kwargs(world)`` then names A's rows,
    which A's manager may read."""
    return World(a=world.b, b=world.a)


def requests_for(world: World):
    """(label, url name, method, url, data) of every page to read, from the URL conf."""
    cases = all_cases()["portal"]
    mine = swapped(world)
    for name, pattern in portal_patterns():
        case = cases.get(name)
        has_kwargs = bool(pattern.pattern.converters)
        if has_kwargs:
            assert case is not None and case.kind == OBJECT, (
                f"portal:{name} takes arguments: give it an isolation case with kwargs")
            kwargs = case.kwargs(mine)
        else:
            kwargs = {}
        url = reverse(f"portal:{name}", kwargs=kwargs or None)
        yield name, name, "GET", url, None
        if case and case.query:
            yield f"{name} (filtered)", name, "GET", url, case.query(mine)
        if case and "POST" in case.methods and name not in NOT_PAGES:
            # an empty form: the page again, with its errors next to the fields
            yield f"{name} (errors)", name, "POST", url, {}
    # a second kind of document and a priced simulation
    yield ("invoice (statement)", "invoice", "GET",
           reverse("portal:invoice", kwargs={"pk": world.a.statement.pk}), None)
    yield ("simulator (a price)", "simulator", "POST", reverse("portal:simulator"),
           {"evse": world.a.evse.pk, "start": "2026-10-06T18:00", "energy_kwh": "20",
            "charging_minutes": "60", "parking_minutes": "0"})


def is_page(response) -> bool:
    return (response.status_code in (200, 400)
            and response.get("Content-Type", "").startswith("text/html")
            and b"<html" in response.content[:500])


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_portal_page_is_labelled_and_structured(world, language):
    client = Client(headers={"accept-language": language})
    client.force_login(world.a.user)
    failures, seen = [], set()
    for label, name, method, url, data in requests_for(world):
        if name in ANONYMOUS_ONLY:
            continue
        if method == "GET":
            response = client.get(url, data or {})
        else:
            response = client.post(url, data)
        if name in NOT_PAGES:
            assert not is_page(response), f"portal:{name} answers a page: take it off NOT_PAGES"
            continue
        if not is_page(response):
            failures.append(f"{label} {method} {url}: {response.status_code} "
                            f"{response.get('Content-Type')} is not a page (a download or an "
                            "action? add it to NOT_PAGES)")
            continue
        seen.add(name)
        html = response.content.decode()
        assert f'<html lang="{language}">' in html, f"{url} is not in {language}"
        failures += [f"{label} ({url}): {problem}" for problem in audit(html)]

    anonymous = Client(headers={"accept-language": language})
    for name in sorted(ANONYMOUS_ONLY):
        response = anonymous.get(reverse(f"portal:{name}"))
        assert is_page(response), name
        seen.add(name)
        failures += [f"{name} (signed out): {problem}"
                     for problem in audit(response.content.decode())]

    assert not failures, "\n".join(failures)
    assert MUST_SEE <= seen, f"pages not reached: {sorted(MUST_SEE - seen)}"


def test_the_priced_simulation_is_shown_to_the_audit(world):
    """The simulator's result (tables, facts) is part of the walk: the posted session prices."""
    client = Client()
    client.force_login(world.a.user)
    *_, (_, _, _, url, data) = requests_for(world)
    response = client.post(url, data)
    assert response.status_code == 200
    assert b"data-result" in response.content
    assert audit(response.content.decode()) == []


def test_every_page_of_the_url_conf_is_walked(world):
    walked = {name for _, name, *_ in requests_for(world)}
    assert walked == {name for name, _ in portal_patterns()}
    assert set(NOT_PAGES) <= walked, "NOT_PAGES names a page the URL conf no longer has"


PAGE = """<!doctype html><html lang="en"><body><main id="main">{}</main></body></html>"""


@pytest.mark.parametrize("body, problem", [
    ('<h1>T</h1><input id="a" name="a">', 'a control without a label: <input id="a" name="a">'),
    ('<h1>T</h1><select name="s"></select>', "a control without a label"),
    ('<h1>T</h1><textarea id="t"></textarea><label for="x">X</label>',
     'label for names the id "x", which is missing'),
    ('<h1>T</h1><p id="d"></p><p id="d"></p>', 'the id "d" is used 2 times'),
    ("<h1>T</h1><h1>U</h1>", "2 h1 elements"),
    ("<p>no title</p>", "0 h1 elements"),
    ('<h1>T</h1><img src="x.png">', "an image without alt"),
    ('<h1>T</h1><a href="/x"></a>', "an empty <a>"),
    ('<h1>T</h1><button type="submit"> </button>', "an empty <button>"),
    ("<h1>T</h1><table><tr><td>1</td></tr></table>", "a table outside a .table-wrap"),
    ('<h1>T</h1><input aria-describedby="gone">', 'aria-describedby names the id "gone"'),
])
def test_the_audit_finds_each_problem(body, problem):
    problems = audit(PAGE.format(body))
    assert any(problem in found for found in problems), problems


def test_the_audit_accepts_every_way_of_labelling_and_finds_a_missing_main_and_lang():
    body = ('<h1>T</h1><label for="a">A</label><input id="a">'
            '<label>B <select name="b"></select></label>'
            '<input aria-label="C"><span id="dl">D</span><textarea aria-labelledby="dl"></textarea>'
            '<input type="hidden" name="h"><input type="submit" value="Go">'
            '<a href="/x"><img src="i.png" alt="Home"></a>'
            '<div class="table-wrap"><table><tr><td>1</td></tr></table></div>')
    assert audit(PAGE.format(body)) == []
    bare = audit('<html><body><div id="content"><h1>T</h1></div></body></html>')
    assert any("<main" in problem for problem in bare)
    assert "<html> has no lang" in bare
