"""The Budgets and Channels pages: admins manage, members see what concerns them.

Order of checks on management pages: logged in (else the login page), team admin (else 403,
whatever the id), then the object within the admin's own team (else 404).
"""

import logging
from datetime import timedelta
from typing import Any

from csp.decorators import csp_replace
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import is_team_admin, membership_of, team_of
from accounts.models import User
from budgets import notify, tasks
from budgets.enforcement import recent_events
from budgets.forms import (
    AlertSettingsForm,
    BudgetForm,
    ChannelForm,
    ExemptionForm,
    QuotaEnforcementForm,
)
from budgets.models import (
    Alert,
    AlertKind,
    Budget,
    Channel,
    Delivery,
    EnforcementExemption,
    QuotaAlertSetting,
    QuotaEnforcement,
    Report,
    ReportKind,
    ReportSetting,
    StaleAgentSetting,
)
from budgets.reports import compose as report_compose
from budgets.reports import schedule as report_schedule
from budgets.reports import unsubscribe as unsubscribe_links
from budgets.status import budget_status_for
from telemetry_site.queueing import enqueue, enqueue_on_commit
from usage.models import Subscription

log = logging.getLogger(__name__)

SECRET_SESSION_KEY = "budgets_new_channel_secret"
RECENT_ALERTS = 20


def _admin_team(request):
    team = team_of(request.user)
    if team is None or not is_team_admin(request.user):
        raise PermissionDenied("Only team admins manage budgets and channels.")
    return team


def _subscriptions_with_settings(user) -> list[Subscription]:
    subs = list(Subscription.objects.filter(owner=user).select_related("quota_alert_setting"))
    for sub in subs:
        setting = getattr(sub, "quota_alert_setting", None)
        sub.current_quota_setting = setting or QuotaAlertSetting(subscription=sub)
    return subs


def _stale_setting(user) -> StaleAgentSetting:
    return StaleAgentSetting.objects.filter(user=user).first() or StaleAgentSetting(user=user)


def _report_choices(user) -> dict[str, bool]:
    """The reports `user` may get by email and whether they get them now (their choice or
    their role's default, budgets.reports.schedule.wants)."""
    membership = membership_of(user)
    if membership is None:
        return {}
    setting = ReportSetting.objects.filter(user=user).first()
    choices = {
        "weekly_digest": report_schedule.wants(membership, setting, ReportKind.WEEKLY_DIGEST)
    }
    if report_schedule.may_receive(membership, ReportKind.MONTHLY_CHARGEBACK):
        choices["monthly_report"] = report_schedule.wants(
            membership, setting, ReportKind.MONTHLY_CHARGEBACK
        )
    return choices


def _settings_form(user, data=None) -> AlertSettingsForm:
    return AlertSettingsForm(
        data,
        subscriptions=_subscriptions_with_settings(user),
        stale_setting=_stale_setting(user),
        reports=_report_choices(user),
    )


def _recent_alerts(user, team, admin: bool):
    alerts = Alert.objects.filter(team=team).exclude(kind__in=[AlertKind.TEST, AlertKind.REPORT])
    if not admin:
        alerts = alerts.filter(
            Q(budget__in=Budget.objects.visible_to(user))
            | Q(subscription__owner=user)
            | Q(machine__owner=user)
        )
    return (
        alerts.select_related("budget")
        .prefetch_related(
            Prefetch(
                "deliveries",
                queryset=Delivery.objects.select_related("channel", "recipient").order_by("pk"),
            )
        )
        .order_by("-created_at")[:RECENT_ALERTS]
    )


@login_required
def budgets_page(request):
    team = team_of(request.user)
    admin = is_team_admin(request.user)
    context: dict[str, Any] = {"team": team, "is_admin": admin, "statuses": [], "alerts": []}
    if team is not None:
        context["statuses"] = budget_status_for(request.user)
        context["alerts"] = _recent_alerts(request.user, team, admin)
        context.update(_enforcement_context(request.user, team, admin))
        if admin:
            context["inactive"] = Budget.objects.filter(team=team, active=False)
    context["settings_form"] = _settings_form(request.user)
    return render(request, "budgets/budgets.html", context)


def _enforcement_context(user, team, admin: bool, **forms) -> dict[str, Any]:
    """Warnings and stops in Claude Code: the recent events (admins: the team's, members:
    their own) and, for admins, the quota levels and the exemptions with their forms."""
    context: dict[str, Any] = {
        "enforcement_events": recent_events(user, team, whole_team=admin, limit=RECENT_ALERTS)
    }
    if admin:
        now = timezone.now()
        rules = QuotaEnforcement.objects.filter(team=team).first()
        context["quota_form"] = forms.get("quota_form") or QuotaEnforcementForm(instance=rules)
        context["exemption_form"] = forms.get("exemption_form") or ExemptionForm(team=team, now=now)
        context["exemptions"] = (
            EnforcementExemption.objects.filter(team=team)
            .filter(Q(until__isnull=True) | Q(until__gt=now))
            .select_related("member", "budget")
        )
    return context


def _budgets_page_with(request, team, status: int, **forms):
    context = {
        "team": team,
        "is_admin": True,
        "statuses": budget_status_for(request.user),
        "alerts": _recent_alerts(request.user, team, True),
        "settings_form": _settings_form(request.user),
        **_enforcement_context(request.user, team, True, **forms),
    }
    return render(request, "budgets/budgets.html", context, status=status)


@login_required
@require_POST
def quota_enforcement(request):
    """An admin sets the team's warn and stop levels for the official quota windows."""
    team = _admin_team(request)
    rules = QuotaEnforcement.objects.filter(team=team).first() or QuotaEnforcement(team=team)
    form = QuotaEnforcementForm(request.POST, instance=rules)
    if not form.is_valid():
        return _budgets_page_with(request, team, 400, quota_form=form)
    form.save()
    messages.success(request, "The quota levels are saved.")
    return redirect("budgets")


@login_required
@require_POST
def exemption_create(request):
    team = _admin_team(request)
    form = ExemptionForm(request.POST, team=team, now=timezone.now())
    if not form.is_valid():
        return _budgets_page_with(request, team, 400, exemption_form=form)
    exemption = form.save(commit=False)
    exemption.created_by = request.user
    exemption.save()
    log.info("enforcement exemption", extra={"exemption": exemption.pk, "team": team.pk})
    messages.success(request, f"Stops lifted: {exemption}.")
    return redirect("budgets")


@login_required
@require_POST
def exemption_delete(request, public_id):
    team = _admin_team(request)
    exemption = get_object_or_404(EnforcementExemption, public_id=public_id, team=team)
    exemption.delete()
    messages.success(request, "The exemption is removed.")
    return redirect("budgets")


@login_required
@require_POST
def alert_settings(request):
    """A member's own quota and stale-agent alert settings (never anyone else's)."""
    subs = _subscriptions_with_settings(request.user)
    form = AlertSettingsForm(
        request.POST,
        subscriptions=subs,
        stale_setting=_stale_setting(request.user),
        reports=_report_choices(request.user),
    )
    if not form.is_valid():
        team = team_of(request.user)
        context = {
            "team": team,
            "is_admin": is_team_admin(request.user),
            "statuses": budget_status_for(request.user) if team else [],
            "alerts": _recent_alerts(request.user, team, False) if team else [],
            "settings_form": form,
            **(_enforcement_context(request.user, team, False) if team else {}),
        }
        return render(request, "budgets/budgets.html", context, status=400)
    with transaction.atomic():
        StaleAgentSetting.objects.update_or_create(
            user=request.user,
            defaults={
                "enabled": form.cleaned_data["stale_enabled"],
                "hours": form.cleaned_data["stale_hours"],
            },
        )
        for sub in subs:
            QuotaAlertSetting.objects.update_or_create(
                subscription=sub,
                defaults={
                    "enabled": form.cleaned_data[f"quota_{sub.public_id}_enabled"],
                    "threshold": form.cleaned_data[f"quota_{sub.public_id}_threshold"],
                },
            )
        choices = {
            name: form.cleaned_data[name]
            for name in ("weekly_digest", "monthly_report")
            if name in form.cleaned_data
        }
        if choices:
            ReportSetting.objects.update_or_create(user=request.user, defaults=choices)
    messages.success(request, "Your alert settings are saved.")
    return redirect("budgets")


@login_required
def budget_create(request):
    team = _admin_team(request)
    form = BudgetForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        budget = form.save(commit=False)
        budget.created_by = request.user
        budget.save()
        form.save_m2m()
        log.info("budget created", extra={"budget": budget.pk, "team": team.pk})
        _evaluate_soon(team)
        messages.success(request, f"Budget '{budget.name}' created.")
        return redirect("budgets")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "budgets/budget_form.html", {"form": form, "budget": None}, status=status
    )


@login_required
def budget_edit(request, public_id):
    team = _admin_team(request)
    budget = get_object_or_404(Budget, public_id=public_id, team=team)
    form = BudgetForm(request.POST or None, instance=budget, team=team)
    if request.method == "POST" and form.is_valid():
        form.save()
        _evaluate_soon(team)
        messages.success(request, f"Budget '{budget.name}' saved.")
        return redirect("budgets")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "budgets/budget_form.html", {"form": form, "budget": budget}, status=status
    )


@login_required
def budget_delete(request, public_id):
    team = _admin_team(request)
    budget = get_object_or_404(Budget, public_id=public_id, team=team)
    if request.method == "POST":
        name = budget.name
        budget.delete()
        messages.success(request, f"Budget '{name}' deleted.")
        return redirect("budgets")
    return render(request, "budgets/confirm_delete.html", {"object": budget, "what": "budget"})


def _evaluate_soon(team) -> None:
    """A new or changed budget may already be past a threshold: check it after commit."""
    enqueue_on_commit(tasks.evaluate_team, team.pk)


@login_required
def channels_page(request):
    team = _admin_team(request)
    secret = request.session.pop(SECRET_SESSION_KEY, None)
    channels = list(Channel.objects.filter(team=team).prefetch_related("members", "budgets"))
    tests = notify.last_tests(channels)
    for channel in channels:
        # For the template only: the newest "Send test" delivery, or None.
        channel.last_test = tests.get(channel.pk)  # type: ignore[attr-defined]
    return render(
        request,
        "budgets/channels.html",
        {"channels": channels, "new_secret": secret, "team": team},
    )


def _show_secret_once(request, channel: Channel) -> None:
    request.session[SECRET_SESSION_KEY] = {
        "channel": channel.name,
        "secret": channel.secret,
    }


@login_required
def channel_create(request):
    team = _admin_team(request)
    form = ChannelForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        channel = form.save(commit=False)
        channel.created_by = request.user
        channel.save()
        form.save_relations(channel)
        log.info("alert channel created", extra={"channel": channel.pk, "team": team.pk})
        if channel.kind == Channel.Kind.WEBHOOK:
            _show_secret_once(request, channel)
        messages.success(request, f"Channel '{channel.name}' created.")
        return redirect("channels")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "budgets/channel_form.html", {"form": form, "channel": None}, status=status
    )


def _team_channel(request, public_id) -> Channel:
    team = _admin_team(request)
    return get_object_or_404(Channel, public_id=public_id, team=team)


@login_required
def channel_edit(request, public_id):
    channel = _team_channel(request, public_id)
    form = ChannelForm(request.POST or None, instance=channel, team=channel.team)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Channel '{channel.name}' saved.")
        return redirect("channels")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "budgets/channel_form.html", {"form": form, "channel": channel}, status=status
    )


@login_required
def channel_delete(request, public_id):
    channel = _team_channel(request, public_id)
    if request.method == "POST":
        name = channel.name
        channel.delete()
        messages.success(request, f"Channel '{name}' deleted.")
        return redirect("channels")
    return render(request, "budgets/confirm_delete.html", {"object": channel, "what": "channel"})


@login_required
@require_POST
def channel_test(request, public_id):
    # Sent by a worker: a slow receiver holds the worker up to its deadline, never this request.
    channel = _team_channel(request, public_id)
    delivery = notify.create_test_delivery(channel, request.user)
    enqueue(tasks.send_test_delivery, delivery.pk)
    messages.info(
        request,
        f"Test message queued for '{channel.name}'. Reload to see its result under Last test.",
    )
    return redirect("channels")


@login_required
@require_POST
def channel_enable(request, public_id):
    channel = _team_channel(request, public_id)
    channel.enable()
    log.info("alert channel re-enabled", extra={"channel": channel.pk})
    messages.success(request, f"Channel '{channel.name}' is enabled again.")
    return redirect("channels")


@login_required
@require_POST
def channel_rotate_secret(request, public_id):
    channel = _team_channel(request, public_id)
    if channel.kind != Channel.Kind.WEBHOOK:
        raise Http404("Only webhook channels have a secret.")
    channel.rotate_secret()
    _show_secret_once(request, channel)
    messages.success(request, f"Channel '{channel.name}' has a new secret.")
    return redirect("channels")


# --- scheduled reports -------------------------------------------------------------------------


def _preview_report(team, kind: str, now) -> Report:
    """An unsaved report of the period in progress (this week, this month), as it would be
    sent if the period ended now."""
    today = team.today(now)
    if kind == ReportKind.MONTHLY_CHARGEBACK:
        start, end = today.replace(day=1), today
    else:
        start, end = today - timedelta(days=today.weekday()), today
    data = report_schedule.compute(team, kind, start, end, now)
    return Report(
        team=team, kind=kind, period_start=start, period_end=end, data=data, created_at=now
    )


def _preview_kind(request) -> str:
    if request.GET.get("kind") == "monthly":
        return ReportKind.MONTHLY_CHARGEBACK
    return ReportKind.WEEKLY_DIGEST


@login_required
def reports_page(request):
    """Admins preview this period's digest or chargeback report (the email's own HTML, framed
    from report_preview) and see the reports sent so far."""
    team = _admin_team(request)
    kind = _preview_kind(request)
    report = _preview_report(team, kind, timezone.now())
    subject = report_compose.render(report)[0]
    sent = (
        Report.objects.filter(team=team)
        .select_related("alert")
        .prefetch_related("alert__deliveries")
        .order_by("-period_start", "kind")[:24]
    )
    return render(
        request,
        "budgets/reports.html",
        {
            "team": team,
            "kind": kind,
            "subject": subject,
            "preview_query": "monthly" if kind == ReportKind.MONTHLY_CHARGEBACK else "weekly",
            "report": report,
            "sent": sent,
            "weekly_recipients": report_schedule.recipients(team, ReportKind.WEEKLY_DIGEST),
            "monthly_recipients": report_schedule.recipients(team, ReportKind.MONTHLY_CHARGEBACK),
            "report_channels": Channel.objects.filter(team=team).filter(
                Q(weekly_digest=True) | Q(monthly_report=True)
            ),
        },
    )


# The email's HTML carries its own <style> (mail clients need it inline); only this framed
# document may use inline styles, and only this site may frame it.
@csp_replace({"style-src": ["'self'", "'unsafe-inline'"], "frame-ancestors": ["'self'"]})
@xframe_options_sameorigin
@login_required
def report_preview(request):
    """The HTML email of this period's report so far, as the admin's team would get it."""
    team = _admin_team(request)
    report = _preview_report(team, _preview_kind(request), timezone.now())
    return HttpResponse(report_compose.render(report)[2])


@login_required
def report_csv(request, public_id):
    """The CSV of a sent chargeback report of the admin's own team."""
    team = _admin_team(request)
    report = get_object_or_404(
        Report, public_id=public_id, team=team, kind=ReportKind.MONTHLY_CHARGEBACK
    )
    response = HttpResponse(
        report_compose.chargeback_csv(report.data), content_type="text/csv; charset=utf-8"
    )
    filename = report_compose.csv_filename(team, report.data)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@csrf_exempt  # the signed token authenticates; mail clients POST without a CSRF token (RFC 8058)
@require_http_methods(["GET", "POST"])
def report_unsubscribe(request, token):
    """GET asks to confirm (link scanners must not unsubscribe anyone); POST unsubscribes,
    from the page's button or from the mail client's one-click List-Unsubscribe-Post."""
    found = report_unsubscribe_target(token)
    if found is None:
        return render(request, "budgets/unsubscribe.html", {"invalid": True}, status=404)
    user, kind = found
    label = ReportKind(kind).label
    if request.method == "POST":
        field = "weekly_digest" if kind == ReportKind.WEEKLY_DIGEST else "monthly_report"
        ReportSetting.objects.update_or_create(user=user, defaults={field: False})
        log.info("report unsubscribed", extra={"user": user.pk, "kind": kind})
        return render(request, "budgets/unsubscribe.html", {"done": True, "label": label})
    return render(
        request, "budgets/unsubscribe.html", {"label": label, "email": user.email, "token": token}
    )


def report_unsubscribe_target(token: str):
    """(user, kind) a valid unsubscribe token names, or None."""
    read = unsubscribe_links.read_token(token)
    if read is None or read[1] not in ReportKind.values:
        return None
    user = User.objects.filter(pk=read[0]).first()
    return None if user is None else (user, read[1])
