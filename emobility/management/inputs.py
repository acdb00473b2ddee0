"""What the import commands share: the operator their ``--operator`` names and the file they
read, each refused with a ``CommandError`` that says why (the command exits non-zero)."""

import os
from contextlib import contextmanager

from django.core.management.base import CommandError

from emobility.models import Operator


def operator_named(code: str) -> Operator:
    """The operator with this code."""
    try:
        return Operator.objects.get(code=code)
    except Operator.DoesNotExist:
        raise CommandError(f"There is no operator with the code {code!r}.") from None


@contextmanager
def file_to_read(path: str):
    """The file at ``path``, open for reading bytes; a file that is not there, or that cannot be
    read (also while the command reads it), is a ``CommandError``."""
    if not os.path.isfile(path):
        raise CommandError(f"There is no file {path!r}.")
    try:
        with open(path, "rb") as handle:
            yield handle
    except OSError as exc:
        raise CommandError(f"The file cannot be read: {exc}") from None
