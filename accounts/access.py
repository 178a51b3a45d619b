"""Who may see whom: the one place the visibility rules of DESIGN.md are written down.

A member sees their own data in full and their team's totals; admins and owners see every
member of their team; when the team allows it, members see each other's figures too.
Anyone outside the team sees nothing (and gets 404 for objects that are not theirs).
"""

from accounts.models import Membership, Team, User


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
