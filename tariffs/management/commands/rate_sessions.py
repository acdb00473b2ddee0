from django.core.management.base import BaseCommand, CommandError

from emobility.models import ChargingSession, Operator
from tariffs.models import RatingRun
from tariffs.services import RatingOutcome, sessions_rate, sessions_rerate
from tariffs.services.rating import BATCH_SIZE


def _refuse(message: str) -> CommandError:
    return CommandError(message, returncode=2)


def _ids(value: str) -> list[int]:
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise _refuse(f"--session-ids {value!r} is not a comma-separated list of session "
                      "ids (e.g. 1,2,3).") from exc
    if not ids or min(ids) < 1:
        raise _refuse(f"--session-ids {value!r} names no session (ids are positive numbers).")
    return list(dict.fromkeys(ids))


def _counts(run: RatingRun) -> str:
    return (f"{run.rated} rated, {run.failed} failed, {run.skipped} skipped of "
            f"{run.sessions_total} sessions")


class Command(BaseCommand):
    help = ("Rate an operator's imported sessions (with --retry-failed also those whose "
            "rating failed), or re-rate given sessions with --rerate (settled and invoiced "
            "sessions are refused). Prints a progress line per batch and a summary with the "
            "failure reasons.")

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, help="operator code")
        parser.add_argument("--retry-failed", action="store_true",
                            help="also rate sessions whose rating failed")
        parser.add_argument("--session-ids", metavar="1,2,3",
                            help="only these sessions (ids, comma-separated)")
        parser.add_argument("--rerate", action="store_true",
                            help="price these sessions again (needs --session-ids and "
                                 "--reason); the previous price is kept as history")
        parser.add_argument("--reason", default="", help="why (recorded on the rating run)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N",
                            help=f"sessions per batch (default {BATCH_SIZE})")

    def handle(self, *args, operator: str, retry_failed: bool, session_ids: str | None,
               rerate: bool, reason: str, batch_size: int, **options):
        found = Operator.objects.filter(code=operator).first()
        if found is None:
            raise _refuse(f"No operator with code {operator!r}: nothing rated.")
        if batch_size < 1:
            raise _refuse("--batch-size must be at least 1.")
        ids = _ids(session_ids) if session_ids is not None else None
        if ids is not None:
            known = set(ChargingSession.objects.filter(operator=found, pk__in=ids)
                        .values_list("pk", flat=True))
            unknown = [pk for pk in ids if pk not in known]
            if unknown:
                raise _refuse(f"Not sessions of {found.code}: "
                              f"{', '.join(map(str, unknown[:20]))}"
                              f"{' ...' if len(unknown) > 20 else ''}: nothing rated.")
        reason = reason.strip()
        if rerate:
            if ids is None or not reason:
                raise _refuse("--rerate needs --session-ids (which sessions) and --reason (why).")
            if retry_failed:
                raise _refuse("--retry-failed does not go with --rerate, which re-rates "
                              "sessions whose rating failed too.")
            outcome = sessions_rerate(session_ids=ids, reason=reason, batch_size=batch_size,
                                      progress=self._progress)
        else:
            outcome = sessions_rate(session_ids=ids, operator_id=found.pk,
                                    retry_failed=retry_failed,
                                    trigger=RatingRun.Trigger.COMMAND, reason=reason,
                                    batch_size=batch_size, progress=self._progress)
        self._summary(outcome)

    def _progress(self, run: RatingRun) -> None:
        self.stdout.write(f"{_counts(run)} ({run.progress}%)")

    def _summary(self, outcome: RatingOutcome) -> None:
        run = outcome.run
        style = self.style.SUCCESS if not (run.failed or outcome.refused) else self.style.WARNING
        self.stdout.write(style(f"Rating run #{run.pk} {run.get_status_display().lower()}: "
                                f"{_counts(run)}."))
        if outcome.failures:
            self.stdout.write("Failed:")
            for why, count in sorted(outcome.failures.items(), key=lambda item: -item[1]):
                self.stdout.write(f"  {count} session{'s' if count != 1 else ''}: {why}")
        if outcome.refused:
            self.stdout.write(f"Refused ({len(outcome.refused)}):")
            for external_id, why in outcome.refused:
                self.stdout.write(f"  {external_id}: {why}")
