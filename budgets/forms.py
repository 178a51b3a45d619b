"""Forms for budgets, channels and a member's own alert settings; every queryset is team-scoped."""

import re
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.forms.utils import flatatt
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts.models import User
from budgets import webhooks
from budgets.models import (
    MAX_THRESHOLDS,
    Budget,
    Channel,
    Enforcement,
    EnforcementExemption,
    QuotaEnforcement,
    ScopeKind,
)
from usage.models import Project


def parse_thresholds(raw: str) -> list[int]:
    """`"90, 100"` → [90, 100]; whole percentages from 1 to 1000, sorted, no repeats."""
    parts = [p for p in re.split(r"[\s,;]+", raw.strip().replace("%", "")) if p]
    if not parts:
        raise ValidationError("Give at least one threshold, e.g. 90, 100.")
    values = set()
    for part in parts:
        # isdigit() accepts '²', which int() refuses: only ASCII digits are a percentage.
        if not re.fullmatch(r"[0-9]{1,4}", part) or not 1 <= int(part) <= 1000:
            raise ValidationError(
                f"'{part}' is not a whole percentage from 1 to 1000 (e.g. 50, 90, 100)."
            )
        values.add(int(part))
    if len(values) > MAX_THRESHOLDS:
        raise ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
    return sorted(values)


class ThresholdsField(forms.CharField):
    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        return parse_thresholds(super().to_python(value) or "")


class LongSelect(forms.Select):
    """A select whose options are written in one pass instead of a template each: the same
    HTML, but a 1,000-member team's member menu costs milliseconds, not a third of a second."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = {str(v) for v in self.format_value(value)}
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (str(key), " selected" if str(key) in chosen else "", label)
                for key, label in self.choices
            ),
        )
        return format_html(
            '<select name="{}"{}>{}</select>',
            name,
            flatatt(self.build_attrs(self.attrs, attrs)),
            options,
        )


class MemberChoiceField(forms.ModelChoiceField):
    """A team member by pk, named "Name (email)" (or the email), in a LongSelect."""

    widget = LongSelect

    def label_from_instance(self, obj):
        return f"{obj.display_name} ({obj.email})" if obj.name else obj.email


class BudgetForm(forms.ModelForm):
    thresholds = ThresholdsField(
        initial="90, 100",
        help_text="Percentages of the amount, separated by commas. Each alerts once per period.",
    )
    member = MemberChoiceField(queryset=User.objects.none(), required=False)
    channels = forms.ModelMultipleChoiceField(
        queryset=Channel.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Where alerts for this budget go.",
    )

    class Meta:
        model = Budget
        fields = [
            "name",
            "scope",
            "project",
            "member",
            "period",
            "amount_usd",
            "thresholds",
            "forecast_alerts",
            "channels",
            "enforcement",
            "active",
        ]
        labels = {
            "amount_usd": "Amount (USD)",
            "forecast_alerts": "Forecast alerts",
            "enforcement": "In Claude Code",
        }
        widgets = {
            "scope": forms.RadioSelect,
            "period": forms.RadioSelect,
            "enforcement": forms.RadioSelect,
        }

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        enforcement = self.fields["enforcement"]
        # Forms posted before the field existed keep the old behaviour: alerts only.
        enforcement.required = False
        enforcement.help_text = (
            "Members whose agent has the hooks installed see a notice at the thresholds; "
            "with stop, their prompts are refused once the amount is spent (for a project "
            "budget, in that project only)."
        )
        # Aliases are covered by their main project, so budgets are set on main projects only.
        project = cast(forms.ModelChoiceField, self.fields["project"])
        project.queryset = Project.objects.filter(team=team, alias_of__isnull=True).exclude(key="")
        project.help_text = "For a project budget; its aliases are included."
        project.empty_label = "Choose a project"
        member = cast(forms.ModelChoiceField, self.fields["member"])
        member.queryset = User.objects.filter(membership__team=team)
        member.help_text = "For a member budget."
        member.empty_label = "Choose a member"
        channels = cast(forms.ModelMultipleChoiceField, self.fields["channels"])
        channels.queryset = Channel.objects.filter(team=team)
        if not channels.queryset.exists():
            channels.help_text = format_html(
                '<a href="{}">Add a channel</a> to be told by email, webhook or chat.',
                reverse("channel_create"),
            )
        amount = cast(forms.DecimalField, self.fields["amount_usd"])
        # The stubs inherit IntegerField's `int | None`; Django's DecimalField takes a Decimal.
        amount.min_value = Decimal("0.01")  # type: ignore[assignment]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        scope = data.get("scope")
        if scope == ScopeKind.PROJECT and not data.get("project"):
            self.add_error("project", "Choose the project this budget is for.")
        if scope == ScopeKind.MEMBER and not data.get("member"):
            self.add_error("member", "Choose the member this budget is for.")
        # A project budget stops prompts in that project only (the hook knows the session's).
        data["enforcement"] = data.get("enforcement") or Enforcement.NOTIFY
        if scope != ScopeKind.PROJECT:
            data["project"] = None
        if scope != ScopeKind.MEMBER:
            data["member"] = None
        return data

    def save(self, commit=True):
        budget = super().save(commit=False)
        budget.team = self.team
        budget.project = self.cleaned_data.get("project")
        budget.member = self.cleaned_data.get("member")
        if commit:
            budget.save()
            self.save_m2m()
        return budget


class AddressesField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value):
        raw = super().to_python(value) or ""
        addresses = []
        for part in re.split(r"[\s,;]+", raw):
            if not part:
                continue
            try:
                validate_email(part)
            except ValidationError:
                raise ValidationError(f"'{part}' is not an email address.") from None
            if part.lower() not in addresses:
                addresses.append(part.lower())
        return addresses


class MemberEmailsField(forms.ModelMultipleChoiceField):
    """Team members, each shown by email address."""

    def label_from_instance(self, obj: User) -> str:
        return obj.email


class WebhookURLField(forms.URLField):
    """A URL field that also takes a single-label host (`http://vm:8150/`): Django's URL
    check wants a dotted name, but a receiver on the server's own network often has none.
    Whether such a host is allowed at all is check_url_shape's call (the form's clean_url),
    which names the setting that allows it."""

    def run_validators(self, value: str) -> None:
        host = urlsplit(value).hostname if value else None
        if host and "." not in host.rstrip(".") and ":" not in host:
            # Checked as the same URL on a dotted name: every other rule still applies.
            value = value.replace(host, f"{host}.invalid", 1)
        super().run_validators(value)


URL_HELP = {
    Channel.Kind.WEBHOOK: "any HTTPS endpoint, signed (Standard Webhooks) with a secret shown "
    "once after saving",
    Channel.Kind.SLACK: "an incoming webhook, https://hooks.slack.com/services/…",
    Channel.Kind.DISCORD: "a channel webhook, https://discord.com/api/webhooks/…",
    Channel.Kind.TEAMS: "a Workflows webhook (“When a Teams webhook request is received”)",
}


class ChannelForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=Channel.Kind.choices, initial=Channel.Kind.EMAIL, widget=forms.RadioSelect
    )
    members = MemberEmailsField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Team members who get the email.",
    )
    addresses = AddressesField(
        required=False, help_text="Other addresses, one per line (e.g. a shared inbox)."
    )
    url = WebhookURLField(
        max_length=1000,
        required=False,
        assume_scheme="https",
        label="Webhook URL",
        help_text="; ".join(
            f"{Channel.Kind(kind).label.split(' (')[0]}: {text}" for kind, text in URL_HELP.items()
        )
        + ".",
    )
    budgets = forms.ModelMultipleChoiceField(
        queryset=Budget.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Budgets that alert here",
        help_text="The budgets whose thresholds and forecasts this channel receives.",
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "members", "addresses", "url", "weekly_digest", "monthly_report"]
        labels = {
            "weekly_digest": "Weekly digest",
            "monthly_report": "Monthly chargeback report",
        }

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        members = cast(MemberEmailsField, self.fields["members"])
        members.queryset = User.objects.filter(membership__team=team, is_active=True)
        budgets = cast(forms.ModelMultipleChoiceField, self.fields["budgets"])
        budgets.queryset = Budget.objects.filter(team=team).order_by("name")
        if self.instance.pk:
            budgets.initial = list(self.instance.budgets.values_list("pk", flat=True))
            # Changing kind would change what the URL and the secret mean; make a new channel.
            self.fields["kind"].disabled = True

    def clean_url(self):
        url = self.cleaned_data.get("url", "").strip()
        if url:
            problem = webhooks.check_url_shape(url) or self._local_name(url)
            if problem:
                raise ValidationError(
                    f"This URL is refused: {problem}. A server that must post to receivers "
                    "on its own network can allow them with WEBHOOK_ALLOW_PRIVATE_IPS=1 "
                    "(docs/production.md)."
                )
        return url

    def _get_validation_exclusions(self):
        # The model's URL check wants a dotted host; WebhookURLField and clean_url check it.
        return {*super()._get_validation_exclusions(), "url"}  # type: ignore[misc]  # not in stubs

    @staticmethod
    def _local_name(url: str) -> str | None:
        """Why a single-label host ("vm") is refused where private receivers are not allowed:
        such a name only resolves on the server's own network. Delivery checks the addresses
        it resolves to (webhooks.resolve) either way."""
        host = urlsplit(url).hostname or ""
        if webhooks.allow_private() or "." in host.rstrip(".") or ":" in host:
            return None
        return f"{host} is a local name; private addresses are not allowed"

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind = data.get("kind")
        if kind in URL_HELP:
            if not data.get("url") and "url" not in self.errors:
                name = "webhook" if kind == Channel.Kind.WEBHOOK else Channel.Kind(kind).label
                self.add_error("url", f"A {name} channel needs a URL.")
            data["members"], data["addresses"] = [], []
        elif kind == Channel.Kind.EMAIL:
            if not data.get("members") and not data.get("addresses") and not self.errors:
                self.add_error("addresses", "Choose at least one member or type an address.")
            data["url"] = ""
        return data

    def save(self, commit=True):
        channel = super().save(commit=False)
        channel.team = self.team
        channel.url = self.cleaned_data.get("url", "")
        channel.addresses = self.cleaned_data.get("addresses", [])
        if commit:
            channel.save()
            self.save_relations(channel)
        return channel

    def save_relations(self, channel: Channel) -> None:
        """Members and budgets, once the channel has its id."""
        channel.members.set(self.cleaned_data.get("members", []))
        channel.budgets.set(self.cleaned_data.get("budgets", []))


class AlertSettingsForm(forms.Form):
    """A member's own alerts: quota threshold per subscription and the stale-agent delay."""

    stale_enabled = forms.BooleanField(required=False, label="Tell me when a machine goes quiet")
    stale_hours = forms.IntegerField(
        min_value=1, max_value=24 * 60, label="after (hours without a sync)"
    )

    def __init__(self, *args, subscriptions, stale_setting, reports=None, **kwargs):
        """`reports`: the scheduled reports this person may get by email, as {field: whether
        they get it now} for "weekly_digest" and (if they may see others) "monthly_report"."""
        super().__init__(*args, **kwargs)
        self.subscriptions = list(subscriptions)
        labels = {
            "weekly_digest": "Email me the weekly digest",
            "monthly_report": "Email me the monthly chargeback report (with CSV)",
        }
        for name, current in (reports or {}).items():
            self.fields[name] = forms.BooleanField(
                required=False, initial=current, label=labels[name]
            )
        self.fields["stale_enabled"].initial = stale_setting.enabled
        self.fields["stale_hours"].initial = stale_setting.hours
        for sub in self.subscriptions:
            setting = sub.current_quota_setting
            self.fields[f"quota_{sub.public_id}_enabled"] = forms.BooleanField(
                required=False, initial=setting.enabled, label=f"Quota alerts for {sub.label}"
            )
            self.fields[f"quota_{sub.public_id}_threshold"] = forms.IntegerField(
                min_value=1, max_value=100, initial=setting.threshold, label="at (% used)"
            )

    def report_fields(self):
        return [self[name] for name in ("weekly_digest", "monthly_report") if name in self.fields]

    def quota_rows(self):
        return [
            (sub, self[f"quota_{sub.public_id}_enabled"], self[f"quota_{sub.public_id}_threshold"])
            for sub in self.subscriptions
        ]


class QuotaEnforcementForm(forms.ModelForm):
    """The team's warn and stop levels for the official 5-hour and weekly quota windows."""

    class Meta:
        model = QuotaEnforcement
        fields = [
            "five_hour_warn_at",
            "five_hour_stop_at",
            "seven_day_warn_at",
            "seven_day_stop_at",
        ]
        labels = {
            "five_hour_warn_at": "5-hour quota: warn at %",
            "five_hour_stop_at": "5-hour quota: stop at %",
            "seven_day_warn_at": "Weekly quota: warn at %",
            "seven_day_stop_at": "Weekly quota: stop at %",
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        for window in ("five_hour", "seven_day"):
            warn, stop = data.get(f"{window}_warn_at"), data.get(f"{window}_stop_at")
            if warn is not None and stop is not None and warn > stop:
                self.add_error(f"{window}_warn_at", "Warn at a lower share than the stop.")
        return data


class ExemptionForm(forms.ModelForm):
    """Lift stops for one member (or everyone) and one budget (or all limits) until a time."""

    member = MemberChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Everyone in the team"
    )
    budget = forms.ModelChoiceField(
        queryset=Budget.objects.none(), required=False, empty_label="All budgets and quotas"
    )
    until = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In UTC. Empty: until you remove it.",
    )

    class Meta:
        model = EnforcementExemption
        fields = ["member", "budget", "until", "note"]

    def __init__(self, *args, team, now, **kwargs):
        super().__init__(*args, **kwargs)
        self.team, self.now = team, now
        member = cast(forms.ModelChoiceField, self.fields["member"])
        member.queryset = User.objects.filter(membership__team=team)
        budget = cast(forms.ModelChoiceField, self.fields["budget"])
        budget.queryset = Budget.objects.filter(team=team)

    def clean_until(self):
        until = self.cleaned_data.get("until")
        if until is not None and until <= self.now:
            raise ValidationError("Give a time in the future.")
        return until

    def save(self, commit=True):
        exemption = super().save(commit=False)
        exemption.team = self.team
        if commit:
            exemption.save()
        return exemption
