import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tariffs.models import PriceIndex, PriceIndexValue
from tariffs.price_index_import import PriceIndexImportError, price_index_import_csv
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def index():
    return PriceIndex.objects.create(operator=OperatorFactory(code="volt"), code="nl-da",
                                     name="NL day-ahead", interval_minutes=15)


def _import(index, text, **kwargs):
    return price_index_import_csv(index=index, stream=io.StringIO(text), **kwargs)


def test_prices_are_imported_per_interval_in_utc(index):
    report = _import(index, "start,price\n2026-10-01T00:00:00+02:00,0.1012\n"
                            "2026-10-01T00:15:00+02:00,0.0987\n")
    assert (report.created, report.updated) == (2, 0)
    assert list(index.values.values_list("start", "price")) == [
        (datetime(2026, 9, 30, 22, 0, tzinfo=UTC), Decimal("0.101200")),
        (datetime(2026, 9, 30, 22, 15, tzinfo=UTC), Decimal("0.098700"))]


def test_semicolons_bom_decimal_commas_and_mwh_header(index):
    _import(index, "\ufeffTimestamp;Price EUR MWh\n2026-10-01 00:00;101,20\n")
    assert index.values.get().price == Decimal("0.1012")


def test_reimport_replaces_prices_without_duplicates(index):
    _import(index, "start,price\n2026-10-01T00:00:00Z,0.10\n")
    report = _import(index, "start,price\n2026-10-01T00:00:00Z,0.12\n2026-10-01T00:15:00Z,0.11\n")
    assert (report.created, report.updated) == (1, 1)
    assert index.values.count() == 2
    assert index.values.first().price == Decimal("0.12")


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("when,amount\n2026-10-01T00:00Z,1\n", "need a start column"),
    ("start,price\nyesterday,0.1\n", "line 2: start"),
    ("start,price\n2026-10-01T00:00Z,cheap\n", "line 2: price"),
    ("start,price\n2026-10-01T00:00Z,NaN\n", "line 2: price"),
    ("start,price\n2026-10-01T00:10Z,0.1\n", "not on the 15-minute grid"),
    ("start,price\n2026-10-01T00:00Z,0.1\n2026-10-01T02:00+02:00,0.2\n", "appears twice"),
    ("start,price\n", "no prices"),
])
def test_bad_files_are_refused_whole_with_the_line(index, text, message):
    with pytest.raises(PriceIndexImportError, match=message):
        _import(index, text)
    assert not PriceIndexValue.objects.exists()


def test_one_bad_row_among_good_ones_writes_nothing(index):
    rows = "".join(f"2026-10-01T{h:02d}:00Z,0.1\n" for h in range(10))
    with pytest.raises(PriceIndexImportError, match="line 12"):
        _import(index, "start,price\n" + rows + "2026-10-01T11:00Z,x\n")
    assert not PriceIndexValue.objects.exists()


def test_command_reports_counts_and_refuses_unknown_index(index, tmp_path, capsys):
    path = tmp_path / "prices.csv"
    path.write_text("start,price\n2026-10-01T00:00Z,0.1\n")
    call_command("import_price_index", str(path), operator="volt", index="nl-da")
    assert "1 new and 0 replaced" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No price index 'nope' at volt .known: nl-da"):
        call_command("import_price_index", str(path), operator="volt", index="nope")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_price_index", str(tmp_path / "missing.csv"), operator="volt",
                     index="nl-da")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"start,price\n\xff\xfe\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_price_index", str(bad), operator="volt", index="nl-da")
