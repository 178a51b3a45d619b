"""What the dashboard pages show and to whom: scoping by viewer, filter forms, machine status.

Figures come from the domain modules (usage.queries, usage.blocks, usage.ratelimits, usage.pace,
usage.planvalue, budgets.status); this module only decides which rows a viewer may see and
puts them together for a page.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts import access
from accounts.models import Team, User
from usage.models import Machine, Project, Source, Subscription

ONLINE_WITHIN = timedelta(minutes=20)
IDLE_WITHIN = timedelta(days=1)


@dataclass(frozen=True)
class Viewer:
    """The logged-in user with what access.py says they may see, computed once per request."""

    user: User
    team: Team | None
    is_admin: bool
    sees_others: bool

    @classmethod
    def of(cls, user: User) -> "Viewer":
        membership = access.membership_of(user)
        return cls(
            user=user,
            team=membership.team if membership else None,
            is_admin=bool(membership and membership.is_admin),
            sees_others=access.sees_other_members(user),
        )

    def owner_q(self, prefix: str = "") -> Q:
        """Rows owned by someone whose figures this viewer may see (`prefix` leads to the owner)."""
        if self.sees_others and self.team is not None:
            return Q(**{f"{prefix}owner__membership__team": self.team})
        return Q(**{f"{prefix}owner": self.user})

    def may_manage(self, machine: Machine) -> bool:
        """Rename, move or retire: the machine's owner, or an admin of its owner's team."""
        if machine.owner_id == self.user.pk:
            return True
        return self.is_admin and self.team is not None and machine.team_id == self.team.pk

    def visible_members(self) -> QuerySet[User]:
        if self.sees_others and self.team is not None:
            return User.objects.filter(membership__team=self.team).order_by("email")
        return User.objects.filter(pk=self.user.pk)


def visible_machines(viewer: Viewer) -> QuerySet[Machine]:
    return Machine.objects.filter(viewer.owner_q())


def visible_subscriptions(viewer: Viewer) -> QuerySet[Subscription]:
    return Subscription.objects.filter(viewer.owner_q())


def local_today() -> date:
    """Today in the active (viewer's) timezone."""
    return timezone.localdate()


def machine_status(machine: Machine, now: datetime | None = None) -> str:
    """online (seen under 20 minutes ago), idle (under a day), offline, or retired."""
    if machine.retired_at is not None:
        return "retired"
    if machine.last_seen_at is None:
        return "offline"
    age = (now or timezone.now()) - machine.last_seen_at
    if age < ONLINE_WITHIN:
        return "online"
    if age < IDLE_WITHIN:
        return "idle"
    return "offline"


SOURCE_CHOICES = [("", "All sources"), *Source.choices]


class DashboardFilters(forms.Form):
    """The filters shared by the explorer and the sessions list; options are what the viewer sees.

    Invalid values become form errors shown above the results; the filter is then ignored, so a
    hand-edited URL never produces an error page.
    """

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    machine = forms.ChoiceField(required=False)
    project = forms.ChoiceField(required=False)
    scope = forms.ChoiceField(required=False)
    member = forms.ChoiceField(required=False)
    source = forms.ChoiceField(required=False, choices=SOURCE_CHOICES)

    def __init__(self, data, *, viewer: Viewer, machines, projects, members, **kwargs):
        super().__init__(data, **kwargs)
        self.viewer = viewer
        self.fields["machine"].choices = [("", "All machines")] + [
            (str(m.uuid), m.name if m.owner_id == viewer.user.pk else f"{m.name} ({m.owner.email})")
            for m in machines
        ]
        self.fields["project"].choices = [("", "All projects")] + [
            (str(p.public_id), p.display_name) for p in projects
        ]
        if viewer.sees_others:
            self.fields["scope"].choices = [("me", "Only mine"), ("team", "Whole team")]
            self.fields["member"].choices = [("", "Everyone I can see")] + [
                (str(u.public_id), u.email) for u in members
            ]
        else:
            del self.fields["member"]
            del self.fields["scope"]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def value(self, name: str):
        """The cleaned value of a field, or None when it is empty or invalid."""
        if not self.is_bound:
            return None
        self.is_valid()
        if name in self.errors:
            return None
        return self.cleaned_data.get(name) or None


def project_choices(viewer: Viewer) -> QuerySet[Project]:
    """Projects to filter by: the team's (aliases folded in) for those who see others, else mine."""
    if viewer.team is None:
        return Project.objects.none()
    projects = Project.objects.filter(team=viewer.team, alias_of__isnull=True)
    if not viewer.sees_others:
        mine = Project.objects.filter(daily__machine__owner=viewer.user).values("pk")
        aliased = Project.objects.filter(pk__in=mine).values("alias_of")
        projects = projects.filter(Q(pk__in=mine) | Q(pk__in=aliased))
    return projects.order_by("display_name")


def project_q(public_id: str, field: str = "project") -> Q:
    """A project and the projects merged into it as aliases."""
    return Q(**{f"{field}__public_id": public_id}) | Q(
        **{f"{field}__alias_of__public_id": public_id}
    )


def day_bounds(day: date) -> datetime:
    """Midnight of `day` in the active timezone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))
