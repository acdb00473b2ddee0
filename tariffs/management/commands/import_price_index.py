from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from emobility.models import Operator
from tariffs.models import PriceIndex
from tariffs.price_index_import import PriceIndexImportError, price_index_import_csv


class Command(BaseCommand):
    help = ("Import price index values (start, price per kWh or MWh) from a CSV file into an "
            "index of an operator; all or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--operator", required=True, help="operator code")
        parser.add_argument("--index", required=True, help="price index code")
        parser.add_argument("--unit", choices=["kWh", "MWh"], default="kWh")

    def handle(self, *args, file: Path, operator: str, index: str, unit: str, **options):
        try:
            price_index = PriceIndex.objects.get(operator__code=operator, code=index)
        except PriceIndex.DoesNotExist as exc:
            known = ", ".join(PriceIndex.objects.filter(operator__code=operator)
                              .values_list("code", flat=True)) or "none"
            if not Operator.objects.filter(code=operator).exists():
                raise CommandError(f"No operator with code {operator!r}.") from exc
            raise CommandError(f"No price index {index!r} at {operator} (known: {known}).") from exc
        try:
            with file.open(encoding="utf-8", newline="") as stream:
                report = price_index_import_csv(index=price_index, stream=stream, unit=unit)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text.") from exc
        except PriceIndexImportError as exc:
            raise CommandError(f"Nothing imported: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"{price_index.code}: {report.created} new and {report.updated} replaced prices "
            f"from {report.first:%Y-%m-%d %H:%M} to {report.last:%Y-%m-%d %H:%M} UTC."))
