from django.apps import AppConfig


class EmobilityConfig(AppConfig):
    name = "emobility"
    verbose_name = "eMobility network"

    def ready(self) -> None:
        # Make the project's Celery app the current one, so @shared_task binds to it.
        from . import celery  # noqa: F401
