from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from emobility.cdrs.jobs import cdr_import_create
from emobility.demo import DEMO_PASSWORD, demo_cdr_file, seed_demo
from emobility.models import CdrImport, Operator
from emobility.selectors import session_counts_by_status
from emobility.tasks import run_import_job
from invoicing.demo import seed_invoices
from invoicing.tasks import render_invoice
from payments.demo import seed_payments
from promotions.demo import seed_promotions
from promotions.services import sessions_settle
from tariffs.demo import seed_tariffs
from tariffs.demo_retail import retail_summary, seed_retail
from tariffs.models import RatingRun
from tariffs.services import sessions_rate


class Command(BaseCommand):
    help = ("Build the demo network, its tariffs, promotions and retail plans (with roaming "
            "sessions), rate and settle its sessions, issue last month's invoices and "
            "reimbursement statements, and collect them (idempotent: running it again leaves "
            "the same data).")

    def handle(self, *args, **options):
        today = timezone.localdate()
        with transaction.atomic():
            logins = seed_demo(today=today, log=self.stdout.write)
            seed_tariffs(today=today, log=self.stdout.write)
            seed_promotions(today=today, log=self.stdout.write)
            seed_retail(today=today)  # roaming CDRs too, rated with the others below
            for operator in Operator.objects.order_by("code"):
                outcome = sessions_rate(operator_id=operator.pk,
                                        trigger=RatingRun.Trigger.DEMO)
                run = outcome.run
                counts = session_counts_by_status(operator_id=operator.pk)
                self.stdout.write(f"{operator.name}: {run.rated} sessions rated now, "
                                  f"{run.failed} failed; {counts.get('rated', 0)} of "
                                  f"{sum(counts.values())} sessions rated")
                for reason, count in outcome.failures.items():
                    self.stdout.write(self.style.WARNING(f"  {count} × {reason}"))
                settled = sessions_settle(operator_id=operator.pk)
                self.stdout.write(f"  {settled.settled} settled now ({settled.discounts} "
                                  f"coupon discounts, {settled.credit_entries} payments from "
                                  f"prepaid credit, {settled.vouchers} perk vouchers)")
            self.stdout.write(retail_summary(today=today))
        self._import_demo_file(today)
        # The invoices are e-mailed as the run would; here into memory, not onto the screen.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            seed_invoices(today=today, render=render_invoice, log=self.stdout.write)
            seed_payments(today=today, render=render_invoice, log=self.stdout.write)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo log-ins (password for all: {DEMO_PASSWORD})"))
        for username, who, where in logins:
            self.stdout.write(f"  {username:<12} {who:<55} http://127.0.0.1:8000{where}")

    def _import_demo_file(self, today) -> None:
        """A CDR export imported through an import job, as a CPO would (once)."""
        operator = Operator.objects.get(code="voltnet-nl")
        name, data = demo_cdr_file(operator=operator, today=today)
        if CdrImport.objects.filter(operator=operator, file_name=name).exists():
            return
        job = cdr_import_create(operator=operator, upload=ContentFile(data, name=name),
                                door=CdrImport.Door.COMMAND)
        summary = run_import_job(job.pk)
        self.stdout.write(f"CDR import {name} ({job.profile} profile): {summary['rows']} rows, "
                          f"{summary['imported']} imported and {summary['rated']} rated, "
                          f"{summary['duplicates']} duplicates, {summary['conflicts']} "
                          f"conflicts, {summary['errors']} refused (see the error report)")
