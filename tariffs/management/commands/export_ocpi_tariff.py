import re
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError

from emobility.models import Operator
from tariffs.models import Tariff, TariffVersion
from tariffs.pricing.ocpi import dumps
from tariffs.selectors import NotExportable, version_ocpi


def _refuse(message: str) -> CommandError:
    return CommandError(message, returncode=2)


def _day(value: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _refuse(f"--date {value!r} is not a date (YYYY-MM-DD).") from exc


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _refuse(f"Unknown time zone {name!r} (use an IANA name such as "
                      "Europe/Amsterdam).") from exc


class Command(BaseCommand):
    help = ("Write the OCPI 2.2.1 Tariff JSON of a tariff's active version (or --version N). "
            "A version whose energy price follows a price index has no OCPI form: export the "
            "tariff of one local day with --date and --time-zone (that day's index prices as "
            "time-window elements).")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version (a tariff version number) replaces Django's --version (its release).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve",
                                     **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("code", help="OCPI tariff id")
        parser.add_argument("--operator", required=True, help="operator code")
        parser.add_argument("--version", type=int, metavar="N",
                            help="version number (default: the active version)")
        parser.add_argument("--date", metavar="YYYY-MM-DD",
                            help="local day whose index prices an indexed tariff is exported "
                                 "with")
        parser.add_argument("--time-zone", metavar="ZONE",
                            help="IANA time zone of that day (required with --date)")
        parser.add_argument("--output", type=Path, metavar="FILE",
                            help="write the JSON to FILE (default: standard output)")

    def handle(self, *args, code: str, operator: str, **options):
        output = Path(options["output"]) if options["output"] is not None else None
        day_text, time_zone = options["date"], options["time_zone"]
        if (day_text is None) != (time_zone is None):
            raise _refuse("--date and --time-zone go together: the day is a local day of that "
                          "zone.")
        day = _day(day_text) if day_text is not None else None
        tz = _zone(time_zone) if time_zone is not None else None
        found = self._version(code, operator, options["version"])
        try:
            data = version_ocpi(found, day=day, tz=tz)
        except NotExportable as exc:
            hint = "" if day is not None else " Use --date YYYY-MM-DD --time-zone ZONE."
            raise _refuse(f"{exc}{hint}") from exc
        text = dumps(data)
        if output is None:
            self.stdout.write(text)
            return
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise _refuse(f"Cannot write {output}: {exc.strerror or exc}.") from exc
        self.stdout.write(f"Wrote {found.tariff.code} v{found.number} "
                          f"({found.get_status_display().lower()}) to {output}.")

    def _version(self, code: str, operator: str, number: int | None) -> TariffVersion:
        if not Operator.objects.filter(code=operator).exists():
            raise _refuse(f"No operator with code {operator!r}.")
        tariff = Tariff.objects.filter(operator__code=operator, code=code).first()
        if tariff is None:
            raise _refuse(f"No tariff {code!r} at {operator}.")
        versions = tariff.versions.select_related("tariff__operator").prefetch_related(
            "elements__components__price_index")
        if number is not None:
            found = versions.filter(number=number).first()
            if found is None:
                raise _refuse(f"{tariff.code} has no version {number} (it has "
                              f"{self._numbers(tariff)}).")
            return found
        found = versions.filter(status=TariffVersion.Status.ACTIVE).order_by("-valid_from") \
            .first()
        if found is None:
            raise _refuse(f"{tariff.code} has no active version (it has "
                          f"{self._numbers(tariff)}): choose one with --version N.")
        return found

    @staticmethod
    def _numbers(tariff: Tariff) -> str:
        versions = [f"v{number} {status}" for number, status in
                    tariff.versions.order_by("number").values_list("number", "status")]
        return ", ".join(versions) or "no versions"
