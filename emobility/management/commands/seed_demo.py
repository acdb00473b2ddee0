from django.core.management.base import BaseCommand
from django.utils import timezone

from emobility.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Build the demo network (idempotent: running it again leaves the same data)."

    def handle(self, *args, **options):
        logins = seed_demo(today=timezone.localdate(), log=self.stdout.write)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo log-ins (password for all: {DEMO_PASSWORD})"))
        for username, who, where in logins:
            self.stdout.write(f"  {username:<12} {who:<55} http://127.0.0.1:8000{where}")
