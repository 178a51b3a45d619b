"""Settings page for a member's own subscriptions (Claude accounts): plan, price and default.

Blocks and rate limits are per subscription, so every machine points to one; new machines
join the owner's default. Only the owner manages their subscriptions: anyone else's is 404.
"""

import logging

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from usage.models import Plan, Subscription
from usage.planvalue import monthly_price, price_table

log = logging.getLogger(__name__)


class SubscriptionForm(forms.ModelForm):
    class Meta:
        model = Subscription
        fields = ["label", "plan", "monthly_price_usd", "is_default"]
        labels = {
            "label": "Name",
            "monthly_price_usd": "Your monthly price (USD)",
            "is_default": "Default for new machines",
        }
        help_texts = {
            "label": "How you tell your Claude accounts apart, e.g. “Work” or “Personal”.",
            "monthly_price_usd": "Leave empty to use the list price of the plan. Required for "
            "a custom price; for Team and Enterprise, the price of your seat.",
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["monthly_price_usd"].widget.attrs.update({"min": "0", "step": "0.01"})

    def clean_monthly_price_usd(self):
        price = self.cleaned_data["monthly_price_usd"]
        if price is not None and price < 0:
            raise forms.ValidationError("A price cannot be negative.")
        return price

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if not label:
            raise forms.ValidationError("Give the subscription a name.")
        clash = Subscription.objects.filter(owner=self.owner, label__iexact=label)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("You already have a subscription with this name.")
        return label

    def clean(self):
        data = super().clean()
        if data.get("plan") == Plan.CUSTOM and data.get("monthly_price_usd") is None:
            self.add_error("monthly_price_usd", "A custom plan needs its monthly price.")
        return data

    @transaction.atomic
    def save(self, commit=True):
        sub = super().save(commit=False)
        sub.owner = self.owner
        has_default = Subscription.objects.filter(owner=self.owner, is_default=True)
        if sub.pk:
            has_default = has_default.exclude(pk=sub.pk)
        if sub.is_default:
            # One default per owner (a database constraint): clear the old one first.
            has_default.update(is_default=False)
        elif not has_default.exists():
            # New machines need somewhere to go: the only subscription stays the default.
            sub.is_default = True
        sub.save()
        return sub


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
        "usage/subscriptions.html",
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
        "usage/subscription_form.html",
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
