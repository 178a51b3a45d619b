"""Celery entry point for scheduled reports (registered through budgets.tasks)."""

from celery import shared_task

from budgets.reports import schedule


@shared_task
def send_due_reports() -> int:
    """Beat's hourly pass: make each team's due reports (once per period) and queue them."""
    return schedule.send_due_reports()
