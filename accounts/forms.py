"""Forms of the login page and the settings pages; validation lives here, rules in accounts.team."""

import zoneinfo
from datetime import datetime, time, timedelta
from typing import cast

from allauth.account.adapter import get_adapter
from allauth.account.forms import RequestLoginCodeForm
from allauth.core import context, ratelimit
from django import forms
from django.core.validators import validate_email
from django.utils import timezone

from accounts.login import client_ip, user_for_login
from accounts.models import Role, Scope, Team, User

TIMEZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]
MAX_TOKEN_LIFETIME = timedelta(days=5 * 366)


class RequestLinkForm(RequestLoginCodeForm):
    """The login form: one email field. Whether the address may log in is never shown."""

    def clean_email(self) -> str:
        # allauth's own check counts per address alone, so ten strangers asking for someone's
        # address would lock that person out for an hour. The `key` limits of
        # ACCOUNT_RATE_LIMITS["request_login_code"] count per address and client together
        # here (3 a minute, then 10 an hour); the per-IP limits apply as before.
        email = self.cleaned_data["email"]
        if email:
            request = context.request
            key = f"{email.strip().lower()}|{client_ip(request) or '-'}"
            if not ratelimit.consume(request, action="request_login_code", key=key):
                raise get_adapter().validation_error("too_many_login_attempts")
        self._user = user_for_login(email) if email else None
        return email


class ProfileForm(forms.ModelForm):
    timezone = forms.ChoiceField(required=False, label="Your timezone")

    class Meta:
        model = User
        fields = ["name", "timezone"]
        labels = {"name": "Display name"}

    def __init__(self, *args, team: Team | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        default = team.timezone if team else "UTC"
        cast(forms.ChoiceField, self.fields["timezone"]).choices = [
            ("", f"Team default ({default})"),
            *TIMEZONE_CHOICES,
        ]
        self.fields["timezone"].help_text = "Dates and times on every page are shown in it."


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Where it is used, e.g. the machine's name.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=[Scope.INGEST],
        widget=forms.CheckboxSelectMultiple,
        help_text="The agent needs ingest; scripts and MCP need read; Prometheus needs metrics.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on (optional)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The token stops working at the end of this day (your timezone).",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        # Checked before any arithmetic: the day after 9999-12-31 is not a date.
        if day > timezone.localdate() + MAX_TOKEN_LIFETIME:
            raise forms.ValidationError("Pick a day within five years.")
        end_of_day = timezone.make_aware(
            datetime.combine(day + timedelta(days=1), time.min), timezone.get_current_timezone()
        )
        now = timezone.now()
        if end_of_day <= now:
            raise forms.ValidationError("Pick today or a later day.")
        if end_of_day - now > MAX_TOKEN_LIFETIME:
            raise forms.ValidationError("Pick a day within five years.")
        return end_of_day


class TeamSettingsForm(forms.ModelForm):
    timezone = forms.ChoiceField(
        choices=TIMEZONE_CHOICES,
        label="Reporting timezone",
        help_text="Agents report days in this timezone from their next sync, so days line up.",
    )

    class Meta:
        model = Team
        fields = ["name", "timezone", "members_see_each_other"]
        labels = {"members_see_each_other": "Members see each other's figures"}


def _role_choices(granting_owner: bool) -> list[tuple[str, str]]:
    return [(v, label) for v, label in Role.choices if granting_owner or v != Role.OWNER]


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, can_grant_owner: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = _role_choices(can_grant_owner)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class DomainForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        help_text="Everyone with an address at this domain may log in, e.g. @example.com.",
    )
    role = forms.ChoiceField(choices=_role_choices(False), initial=Role.MEMBER)

    def clean_domain(self) -> str:
        domain = self.cleaned_data["domain"].strip().lower().lstrip("@")
        try:
            # A domain is valid when some address at it is.
            validate_email(f"someone@{domain}")
        except forms.ValidationError:
            raise forms.ValidationError(f"{domain!r} is not a domain name.") from None
        if "." not in domain:
            raise forms.ValidationError("Use a full domain name such as example.com.")
        return "@" + domain


class RoleForm(forms.Form):
    # Any role parses; whether this viewer may grant it is the team rules' call (accounts.team).
    role = forms.ChoiceField(choices=Role.choices)


def role_choices_for(can_grant_owner: bool) -> list[tuple[str, str]]:
    return _role_choices(can_grant_owner)
