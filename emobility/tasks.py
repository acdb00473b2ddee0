"""Celery tasks of the core app: thin, ids in, call a selector or service."""

from celery import shared_task

from .selectors import session_counts_by_status


@shared_task(name="emobility.session_counts", time_limit=60, soft_time_limit=50)
def session_counts(operator_id: int) -> dict[str, int]:
    """Counts of an operator's sessions per status (used as a health check of the workers)."""
    return session_counts_by_status(operator_id=operator_id)
