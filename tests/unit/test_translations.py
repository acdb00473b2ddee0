"""The Dutch catalogue is complete, its placeholders are intact and the committed .mo is its
compiled form.

`makemessages` (see docs/portal.md) adds every new source string to `locale/nl/.../django.po`
with an empty msgstr, or a fuzzy guess when a similar string was translated before: both show
English (or a wrong text) to a Dutch user, so either fails here. The .mo is what Django reads at
run time: it is compiled again into a temporary file and both are compared message by message,
so a .po edited without `compilemessages` fails too. (Modification times are not compared: a
git checkout writes both files at once, in any order.)
"""
import gettext
import re
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings

LC_MESSAGES = Path(settings.LOCALE_PATHS[0]) / "nl" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"

PERCENT = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")
BRACE = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _read(path):
    with open(path, "rb") as f:
        return read_po(f, locale="nl")


def _label(message):
    text = message.id[0] if isinstance(message.id, tuple) else message.id
    return f"line {message.lineno}: {text[:70]!r}"


def _forms(value):
    return value if isinstance(value, tuple) else (value,)


def untranslated_or_fuzzy(catalog):
    """Labels of the entries a Dutch user would not see in Dutch."""
    problems = []
    for message in catalog:
        if not message.id:
            continue  # the header
        forms = _forms(message.string)
        if message.fuzzy:
            problems.append(f"fuzzy, {_label(message)}")
        elif not forms or not all(s and s.strip() for s in forms):
            problems.append(f"untranslated, {_label(message)}")
        elif isinstance(message.id, tuple) and len(forms) != catalog.num_plurals:
            problems.append(f"{len(forms)} of {catalog.num_plurals} plural forms, "
                            f"{_label(message)}")
    return problems


def _named(pattern, text):
    return sorted(pattern.findall(text))


def broken_placeholders(catalog):
    """Entries whose translation lost, added or changed a placeholder or an HTML tag.

    Braces are compared in every entry (``format_html`` and ``str.format`` strings are not always
    flagged python-brace-format); ``%`` directives where xgettext saw python-format.

    A plural's first form (n == 1 in Dutch) may leave out a placeholder of the English
    singular, as msgfmt --check-format allows, but may not bring one the plural lacks."""
    problems = []
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        ids, forms = _forms(message.id), _forms(message.string)
        python = "python-format" in message.flags
        for i, translated in enumerate(forms):
            if not translated:
                continue
            source = ids[min(i, len(ids) - 1)]
            patterns = [TAG, BRACE] + ([PERCENT] if python else [])
            for pattern in patterns:
                want, got = _named(pattern, source), _named(pattern, translated)
                if want == got:
                    continue
                if i == 0 and len(ids) > 1 and set(got) <= set(_named(pattern, ids[1])):
                    continue
                problems.append(f"form {i} has {got}, not {want}: {_label(message)}")
    return problems


def mo_messages(path):
    """The messages of a compiled catalogue, without its header."""
    with open(path, "rb") as f:
        catalog = dict(gettext.GNUTranslations(f)._catalog)
    catalog.pop("", None)
    return catalog


def compiled_messages(po_path, tmp_path):
    target = tmp_path / "compiled.mo"
    with open(target, "wb") as f:
        write_mo(f, _read(po_path))
    return mo_messages(target)


def mo_differences(po_path, mo_path, tmp_path):
    fresh, committed = compiled_messages(po_path, tmp_path), mo_messages(mo_path)
    missing = sorted(str(k) for k in fresh.keys() - committed.keys())
    stale = sorted(str(k) for k in committed.keys() - fresh.keys())
    changed = sorted(str(k) for k in fresh.keys() & committed.keys() if fresh[k] != committed[k])
    return {"missing from the .mo": missing, "only in the .mo": stale, "changed": changed}


# -- the real catalogue ----------------------------------------------------------------------

def test_the_dutch_catalogue_has_its_header_and_plural_rule():
    catalog = _read(PO)
    assert catalog.num_plurals == 2
    assert catalog.plural_expr.replace(" ", "") in {"(n!=1)", "n!=1"}
    header = PO.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert '"Language: nl\\n"' in header
    assert '"Content-Type: text/plain; charset=UTF-8\\n"' in header
    assert len(catalog) > 1000  # the whole project, not only the first slice of the portal


def test_every_dutch_entry_is_translated_and_none_is_fuzzy():
    problems = untranslated_or_fuzzy(_read(PO))
    assert not problems, (f"{len(problems)} entries of {PO} need a Dutch translation "
                          "(fill the msgstr, remove the fuzzy flag, compilemessages):\n"
                          + "\n".join(problems[:40]))


def test_dutch_translations_keep_placeholders_and_html():
    problems = broken_placeholders(_read(PO))
    assert not problems, "\n".join(problems[:40])


def test_the_committed_mo_is_the_compiled_po(tmp_path):
    differences = mo_differences(PO, MO, tmp_path)
    assert not any(differences.values()), (
        "locale/nl/LC_MESSAGES/django.mo is out of date: run "
        "`manage.py compilemessages -l nl --ignore=.venv`:\n"
        + "\n".join(f"{what}: {keys[:10]}" for what, keys in differences.items() if keys))


@pytest.mark.parametrize("english,dutch", [
    ("Invoices", "Facturen"),
    ("Tariffs", "Tarieven"),
    ("Locations", "Locaties"),
    ("Reimbursement statements", "Vergoedingsoverzichten"),
    ("Credit note", "Creditnota"),
])
def test_django_reads_dutch_from_the_committed_catalogue(english, dutch):
    from django.utils import translation

    with translation.override("nl"):
        assert translation.gettext(english) == dutch


# -- the checks themselves find what they are there for --------------------------------------

HEADER = '''msgid ""
msgstr ""
"Language: nl\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

'''


def _po(tmp_path, body, name="django.po"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_an_empty_msgstr_a_fuzzy_entry_and_a_missing_plural_form_are_found(tmp_path):
    path = _po(tmp_path, '''msgid "Invoices"
msgstr "Facturen"

msgid "Tariffs"
msgstr ""

#, fuzzy
#| msgid "Station"
msgid "Stations"
msgstr "Laadstation"

#, python-format
msgid "%(n)s session"
msgid_plural "%(n)s sessions"
msgstr[0] "%(n)s sessie"
msgstr[1] ""
''')
    problems = untranslated_or_fuzzy(_read(path))
    assert len(problems) == 3
    assert "untranslated" in problems[0] and "Tariffs" in problems[0]
    assert "fuzzy" in problems[1] and "Stations" in problems[1]
    assert "untranslated" in problems[2] and "session" in problems[2]


def test_a_lost_or_renamed_placeholder_or_tag_is_found(tmp_path):
    path = _po(tmp_path, '''#, python-format
msgid "Due %(date)s"
msgstr "Vervalt op %(datum)s"

#, python-brace-format
msgid "Give a time from {min} on."
msgstr "Geef een tijd vanaf min."

msgid "See <a href=\\"/x\\">the list</a>."
msgstr "Zie de lijst."

#, python-format
msgid "Mark paid: %(what)s"
msgid_plural "Mark %(n)s payments paid"
msgstr[0] "Betaling als betaald markeren"
msgstr[1] "%(n)s betalingen als betaald markeren"

#, python-format
msgid "%(n)s file"
msgid_plural "%(n)s files"
msgstr[0] "%(n)s bestand"
msgstr[1] "bestanden"
''')
    problems = broken_placeholders(_read(path))
    assert len(problems) == 4, problems
    assert "Due" in problems[0] and "%(datum)s" in problems[0]
    assert "{min}" in problems[1]
    assert "<a href" in problems[2]
    assert "form 1" in problems[3] and "file" in problems[3]


def test_a_stale_mo_is_found(tmp_path):
    old = _po(tmp_path, 'msgid "Invoices"\nmsgstr "Facturen"\n\nmsgid "Tariffs"\nmsgstr "Tarief"\n',
              name="old.po")
    mo = tmp_path / "old.mo"
    with open(mo, "wb") as f:
        write_mo(f, _read(old))
    same = mo_differences(old, mo, tmp_path)
    assert not any(same.values())

    new = _po(tmp_path, 'msgid "Tariffs"\nmsgstr "Tarieven"\n\nmsgid "Menu"\nmsgstr "Menu"\n',
              name="new.po")
    differences = mo_differences(new, mo, tmp_path)
    assert differences["missing from the .mo"] == ["Menu"]
    assert differences["only in the .mo"] == ["Invoices"]
    assert differences["changed"] == ["Tariffs"]
