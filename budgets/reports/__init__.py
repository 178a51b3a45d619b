"""Scheduled reports: the weekly digest and the monthly chargeback report (docs/alerts.md).

figures.py computes a period's numbers (stored on the Report row), schedule.py decides what is
due and makes each report exactly once, compose.py turns a report into an email or a chat card
for one delivery, unsubscribe.py signs the one-click opt-out links, tasks.py is beat's entry.
"""
