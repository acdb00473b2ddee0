"""``price_cdr``: price OCPI CDRs with an OCPI tariff from the command line.

    python -m tariffs.pricing.cli --tariff T.json --cdr C.json [--time-zone Europe/Amsterdam]
    python -m tariffs.pricing.cli --tariff T.json --cdrs CDRS.jsonl [--time-zone ZONE]

Prints one JSON object per CDR (``--cdrs``: one per line, in input order). The time zone is the
location's IANA zone; UTC when not given. Exit status 0 when everything was priced, 2 with a
one-line message on stderr when an input is invalid (nothing is printed on stdout then).
A Django management command wraps ``main(argv, stdout, stderr)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .engine import price_session
from .errors import PricingInputError
from .ocpi import loads, parse_cdr, parse_tariff, unwrap


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and exit; we return 2 instead
        raise _UsageError(message)


def _parser() -> _Parser:
    parser = _Parser(prog="price_cdr", description="Price OCPI 2.2.1 CDRs with an OCPI tariff.",
                     add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--tariff", required=True, metavar="T.json",
                        help="OCPI Tariff object, bare or in an OCPI response envelope")
    cdrs = parser.add_mutually_exclusive_group(required=True)
    cdrs.add_argument("--cdr", metavar="C.json", help="one OCPI CDR object")
    cdrs.add_argument("--cdrs", metavar="CDRS.jsonl", help="JSON lines: one OCPI CDR per line")
    parser.add_argument("--time-zone", default="UTC", metavar="ZONE",
                        help="IANA time zone of the location (default: UTC)")
    return parser


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise PricingInputError(None, f"cannot read the {what} file {path}: "
                                f"{exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PricingInputError(None, f"the {what} file {path} is not UTF-8 text") from exc


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise PricingInputError("--time-zone", f"unknown time zone {name!r} (use an IANA name "
                                "such as Europe/Amsterdam)") from exc


def _with_prefix(prefix: str, exc: PricingInputError) -> PricingInputError:
    return PricingInputError(None, f"{prefix}: {exc}")


def _run(args: argparse.Namespace) -> list[dict]:
    tz = _zone(args.time_zone)
    try:
        tariff = parse_tariff(unwrap(loads(_read(args.tariff, "tariff"))))
    except PricingInputError as exc:
        raise _with_prefix(f"tariff {args.tariff}", exc) from exc
    if args.cdr is not None:
        sources = [(f"CDR {args.cdr}", _read(args.cdr, "CDR"))]
    else:
        text = _read(args.cdrs, "CDRs")
        sources = [(f"{args.cdrs} line {number}", line)
                   for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    results = []
    for label, source in sources:
        try:
            cdr = parse_cdr(unwrap(loads(source)))
            results.append(price_session(tariff, cdr, tz).to_json())
        except PricingInputError as exc:
            raise _with_prefix(label, exc) from exc
    return results


def main(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run ``price_cdr`` with ``argv`` (without the program name); returns the exit status."""
    parser = _parser()
    if "-h" in argv or "--help" in argv:
        parser.print_help(stdout)
        return 0
    try:
        args = parser.parse_args(argv)
        results = _run(args)
    except _UsageError as exc:
        stderr.write(f"price_cdr: {exc} (see --help)\n")
        return 2
    except PricingInputError as exc:
        stderr.write(f"price_cdr: {' '.join(str(exc).split())}\n")
        return 2
    if args.cdr is not None:
        stdout.write(json.dumps(results[0], indent=2, ensure_ascii=False) + "\n")
    else:
        for result in results:
            stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], sys.stdout, sys.stderr))
