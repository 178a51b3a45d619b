"""Who may see whom: the one place the visibility rules of DESIGN.md are written down.

A member sees their own data in full and their team's totals; admins and owners see every
member of their team; when the team allows it, members see each other's figures too.
Anyone outside the team sees nothing (and gets 404 for objects that are not theirs).

`Viewer` carries those answers through a request; models' `visible_to(viewer)` querysets
(usage.models, budgets.models) turn them into rows.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet

from accounts.models import Membership, Team, User, calendar_team


def membership_of(user) -> Membership | None:
    if user is None or not user.is_authenticated:
        return None
    return user.team_membership


def team_of(user) -> Team | None:
    membership = membership_of(user)
    return membership.team if membership else None


def is_team_admin(user) -> bool:
    membership = membership_of(user)
    return bool(membership and membership.is_admin)


def sees_other_members(user) -> bool:
    """May this viewer see figures broken down by other members of their team?"""
    membership = membership_of(user)
    if membership is None:
        return False
    return membership.is_admin or membership.team.members_see_each_other


def can_view_member(viewer, other: User) -> bool:
    if viewer.pk == other.pk:
        return True
    viewer_team = team_of(viewer)
    return viewer_team is not None and team_of(other) == viewer_team and sees_other_members(viewer)


def visible_member_ids(viewer) -> list[int]:
    """Users whose individual figures the viewer may see (always includes the viewer)."""
    membership = membership_of(viewer)
    if membership is None:
        return [viewer.pk] if viewer.is_authenticated else []
    if sees_other_members(viewer):
        return list(
            Membership.objects.filter(team=membership.team).values_list("user_id", flat=True)
        )
    return [viewer.pk]


@dataclass(frozen=True)
class Viewer:
    """The user asking, with what this module says they may see, computed once per request."""

    user: User
    team: Team | None
    is_admin: bool
    sees_others: bool

    @classmethod
    def of(cls, user) -> "Viewer":
        membership = membership_of(user)
        return cls(
            user=user,
            team=membership.team if membership else None,
            is_admin=bool(membership and membership.is_admin),
            sees_others=sees_other_members(user),
        )

    def owner_q(self, prefix: str = "") -> Q:
        """Rows owned by someone whose figures this viewer may see (`prefix` leads to the owner)."""
        if self.sees_others and self.team is not None:
            return Q(**{f"{prefix}owner__membership__team": self.team})
        return Q(**{f"{prefix}owner": self.user})

    def may_manage(self, machine) -> bool:
        """Rename, move or retire: the machine's owner, or an admin of its owner's team."""
        if machine.owner_id == self.user.pk:
            return True
        return self.is_admin and self.team is not None and machine.team_id == self.team.pk

    def visible_members(self) -> QuerySet[User]:
        """Users whose individual figures this viewer may see, by email."""
        if self.sees_others and self.team is not None:
            return User.objects.filter(membership__team=self.team).order_by("email")
        return User.objects.filter(pk=self.user.pk)

    @property
    def reporting_team(self) -> Team:
        """The team whose calendar counts this viewer's days; an unsaved UTC team without one."""
        return calendar_team(self.team)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The team's reporting timezone (UTC for a user outside any team)."""
        return self.reporting_team.zone

    def today(self) -> date:
        """Today in the team's reporting timezone (UTC for a user outside any team)."""
        return self.reporting_team.today()
