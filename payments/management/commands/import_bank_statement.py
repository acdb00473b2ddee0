"""``python manage.py import_bank_statement FILE --operator CODE``

Imports a bank statement (CSV or camt.053, see docs/payments-sepa.md) for an operator, matches
its credits to open payments and prints a one-line JSON summary:
``{"statement": ID, "file_name": ..., "format": "csv", "transactions": N, "matched": N,
"unmatched": N, "duplicates": N, "by_status": {...}}``. Exits non-zero when the operator is
unknown or the file cannot be read or imported (nothing is stored then).
"""

import json
import os

from django.core.management.base import BaseCommand, CommandError

from emobility.models import Operator
from payments.services.banking import (
    BankImportError,
    bank_statement_import,
    bank_statement_summary,
)


class Command(BaseCommand):
    help = "Import a bank statement (CSV or camt.053) for an operator; prints a JSON summary."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--operator", required=True, help="The operator's code.")

    def handle(self, *args, file, operator, **options):
        try:
            operator_obj = Operator.objects.get(code=operator)
        except Operator.DoesNotExist:
            raise CommandError(f"There is no operator with the code {operator!r}.") from None
        if not os.path.isfile(file):
            raise CommandError(f"There is no file {file!r}.")
        try:
            with open(file, "rb") as handle:
                statement = bank_statement_import(operator=operator_obj, file=handle,
                                                  file_name=os.path.basename(file))
        except BankImportError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"The file cannot be read: {exc}") from None
        self.stdout.write(json.dumps(bank_statement_summary(statement)))
