from decimal import DecimalException
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DataError, transaction

from emobility.models import Operator
from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.ocpi import loads, unwrap
from tariffs.services import tariff_import_ocpi

#: the keys that make a JSON object an OCPI tariff rather than a response envelope
_TARIFF_KEYS = ("id", "elements", "start_date_time")
#: an OCPI tariff in an envelope nests about 10 levels; far deeper input is not a tariff (and
#: would exhaust the stack of the recursive code that stores and exports it)
MAX_DEPTH = 32


def _refuse(message: str) -> CommandError:
    """Exit status 2 with ``message`` on one line (a hostile value may be long: cut short)."""
    message = " ".join(message.split())
    if len(message) > 500:
        message = message[:497] + "..."
    return CommandError(message, returncode=2)


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {message}" if field != "__all__" else message
                         for field, messages in exc.message_dict.items()
                         for message in messages)
    return "; ".join(exc.messages)


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests objects and arrays more than ``MAX_DEPTH`` levels deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def read_tariffs(file: Path) -> list[Any]:
    """The tariff objects in ``file`` (one, a list, or either inside an OCPI response
    envelope), numbers as ``Decimal``; ``CommandError`` (status 2) saying what is wrong."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _refuse(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    if not raw.strip():
        raise _refuse(f"{file} is empty: no tariff to import.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(f"{file} is not UTF-8 text (invalid byte at offset {exc.start}).") \
            from exc
    try:
        data = loads(text)
        if _too_deep(data):
            raise _refuse(f"{file} nests JSON more than {MAX_DEPTH} levels deep: not an OCPI "
                          "tariff.")
        if isinstance(data, dict) and isinstance(data.get("data"), list) \
                and not any(key in data for key in _TARIFF_KEYS):
            data = data["data"]  # an envelope holding a list of tariffs
        tariffs = [unwrap(item) for item in data] if isinstance(data, list) else [unwrap(data)]
    except PricingInputError as exc:
        raise _refuse(f"{file}: {' '.join(str(exc).split())}") from exc
    if not tariffs:
        raise _refuse(f"{file} holds an empty list: no tariff to import.")
    return tariffs


def _label(data: Any, position: int, count: int) -> str:
    tariff_id = data.get("id") if isinstance(data, dict) else None
    name = f"tariff {tariff_id}" if isinstance(tariff_id, str) and len(tariff_id) <= 36 \
        and tariff_id.isprintable() else "tariff"
    return f"{name} (#{position} of {count})" if count > 1 else name


class Command(BaseCommand):
    help = ("Import OCPI 2.2.1 tariffs from a JSON file (one tariff object, a list of them, or "
            "an OCPI response envelope) as new versions of an operator's tariffs, activated "
            "from their start_date_time (or now) unless --draft. All or nothing: when one "
            "tariff is invalid, none is imported and the exit status is 2.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="OCPI Tariff JSON")
        parser.add_argument("--operator", required=True, help="operator code")
        parser.add_argument("--name", help="name of a tariff this import creates (default: its "
                                           "English alternative text, else its id)")
        parser.add_argument("--draft", action="store_true",
                            help="leave the new versions as drafts instead of activating them")

    def handle(self, *args, file: Path, operator: str, name: str | None, draft: bool,
               **options):
        file = Path(file)
        found = Operator.objects.filter(code=operator).first()
        if found is None:
            raise _refuse(f"No operator with code {operator!r}: nothing imported.")
        tariffs = read_tariffs(file)
        if name and len(tariffs) > 1:
            raise _refuse(f"--name names one tariff, but {file} holds {len(tariffs)}: nothing "
                          "imported.")
        versions = []
        with transaction.atomic():
            for position, data in enumerate(tariffs, start=1):
                label = _label(data, position, len(tariffs))
                try:
                    version = tariff_import_ocpi(operator=found, data=data, name=name,
                                                 activate=not draft)
                except ValidationError as exc:  # TariffError among them
                    raise _refuse(f"Nothing imported: {label}: {_messages(exc)}") from exc
                except DecimalException as exc:  # e.g. 1e999999999: beyond Decimal's range
                    raise _refuse(f"Nothing imported: {label}: a number is out of range "
                                  f"({type(exc).__name__}).") from exc
                except DataError as exc:  # a value the database cannot store
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    raise _refuse(f"Nothing imported: {label}: the database refused a value: "
                                  f"{reason}") from exc
                versions.append(version)
        for version in versions:
            version.refresh_from_db()
            starts = "to be valid from" if version.status == "draft" else "valid from"
            valid = (f"{starts} {version.valid_from:%Y-%m-%d %H:%M} UTC"
                     if version.valid_from else "no validity yet")
            if version.valid_to:
                valid += f" to {version.valid_to:%Y-%m-%d %H:%M} UTC"
            self.stdout.write(self.style.SUCCESS(
                f"Imported {version.tariff.code} v{version.number} at {found.code}: "
                f"{version.get_status_display().lower()}, {valid}."))
