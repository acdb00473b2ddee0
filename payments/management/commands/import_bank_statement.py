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

from emobility.management.inputs import file_to_read, operator_named
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
        operator_obj = operator_named(operator)
        with file_to_read(file) as handle:
            try:
                statement = bank_statement_import(operator=operator_obj, file=handle,
                                                  file_name=os.path.basename(file))
            except BankImportError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(bank_statement_summary(statement)))
