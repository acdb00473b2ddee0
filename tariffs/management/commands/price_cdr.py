import io
from decimal import DecimalException

from django.core.management.base import BaseCommand, CommandError

from tariffs.pricing import cli


class Command(BaseCommand):
    help = ("Price OCPI 2.2.1 CDRs with an OCPI tariff, as the pricing engine's command line "
            "does: --cdr prints one JSON object, --cdrs (JSON lines) one result per line. "
            "Invalid input: one line on standard error, exit status 2, nothing on standard "
            "output.")

    def add_arguments(self, parser):
        # Declared for --help; the engine's command line checks them (required, exclusive).
        parser.add_argument("--tariff", metavar="T.json",
                            help="OCPI Tariff object, bare or in an OCPI response envelope")
        parser.add_argument("--cdr", metavar="C.json", help="one OCPI CDR object")
        parser.add_argument("--cdrs", metavar="CDRS.jsonl",
                            help="JSON lines: one OCPI CDR per line")
        parser.add_argument("--time-zone", metavar="ZONE",
                            help="IANA time zone of the location (default: UTC)")

    def handle(self, *args, **options):
        argv = []
        for name in ("tariff", "cdr", "cdrs", "time_zone"):
            if options[name] is not None:
                argv += [f"--{name.replace('_', '-')}", str(options[name])]
        out, err = io.StringIO(), io.StringIO()
        try:
            status = cli.main(argv, out, err)
        except DecimalException as exc:  # a number beyond Decimal's range, e.g. 1e999999999
            raise CommandError(f"price_cdr: a number in the input is out of range "
                               f"({type(exc).__name__})", returncode=2) from exc
        if status != 0:
            raise CommandError(err.getvalue().strip() or f"price_cdr failed ({status}).",
                               returncode=status)
        self.stdout.write(out.getvalue(), ending="")
