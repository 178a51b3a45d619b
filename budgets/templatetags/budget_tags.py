"""Template filters for the budgets pages."""

from django import template

from budgets.messages import summary

register = template.Library()


@register.filter
def alert_summary(alert) -> str:
    """The alert's one-line subject, as its email said it."""
    return summary(alert)[0]


@register.filter
def thresholds_text(values) -> str:
    return ", ".join(f"{v}%" for v in values) or "none"
