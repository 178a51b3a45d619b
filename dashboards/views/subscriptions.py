"""Settings page for a member's own subscriptions (Claude accounts): plan, price and default.

Blocks and rate limits are per subscription, so every machine points to one; new machines
join the owner's default. Only the owner manages their subscriptions: anyone else's is 404.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboards.forms import SubscriptionForm
from usage.analytics.plan_value import monthly_price, price_table
from usage.models import Plan, Subscription

log = logging.getLogger(__name__)


def _own(request, public_id) -> Subscription:
    return get_object_or_404(Subscription, owner=request.user, public_id=public_id)


@login_required
def subscriptions(request):
    """List the viewer's subscriptions and create a new one."""
    form = SubscriptionForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        sub = form.save()
        log.info("subscription created", extra={"subscription": str(sub.public_id)})
        messages.success(request, f"Added “{sub.label}”.")
        return redirect("subscriptions")
    prices = price_table()
    rows = [
        {"subscription": sub, "price": monthly_price(sub, prices)}
        for sub in Subscription.objects.filter(owner=request.user)
        .annotate(machine_count=Count("machines"))
        .prefetch_related("machines")
        .order_by("-is_default", "label")
    ]
    return render(
        request,
        "dashboards/subscriptions.html",
        {"rows": rows, "form": form, "prices": sorted(prices.values(), key=_plan_order)},
        status=400 if form.errors else 200,
    )


def _plan_order(row) -> int:
    return list(Plan.values).index(row.plan) if row.plan in Plan.values else len(Plan.values)


@login_required
def subscription_edit(request, public_id):
    sub = _own(request, public_id)
    form = SubscriptionForm(request.POST or None, instance=sub, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        log.info("subscription changed", extra={"subscription": str(sub.public_id)})
        messages.success(request, f"Saved “{sub.label}”.")
        return redirect("subscriptions")
    return render(
        request,
        "dashboards/subscription_form.html",
        {"form": form, "subscription": sub},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def subscription_default(request, public_id):
    sub = _own(request, public_id)
    with transaction.atomic():
        Subscription.objects.filter(owner=request.user, is_default=True).exclude(pk=sub.pk).update(
            is_default=False
        )
        Subscription.objects.filter(pk=sub.pk).update(is_default=True)
    messages.success(request, f"New machines will now join “{sub.label}”.")
    return redirect("subscriptions")


@login_required
@require_POST
def subscription_delete(request, public_id):
    sub = _own(request, public_id)
    if sub.is_default:
        messages.error(request, "Make another subscription the default before removing this one.")
        return redirect("subscriptions")
    try:
        sub.delete()
    except ProtectedError:
        messages.error(
            request,
            f"“{sub.label}” still has machines; move them to another subscription first "
            "(on the Machines page).",
        )
        return redirect("subscriptions")
    log.info("subscription deleted", extra={"subscription": str(public_id)})
    messages.success(request, f"Removed “{sub.label}”.")
    return redirect("subscriptions")
