"""Managing a team: invitations, the allow-list, roles and removal, with the role rules.

Admins and owners manage the team; only owners touch owners or grant the owner role; a team
always keeps at least one owner who can log in. Every change is one transaction.
"""

import logging

from django.db import transaction
from django.utils import timezone

from accounts.models import AllowedEmail, ApiToken, Membership, Role, User

log = logging.getLogger(__name__)


class TeamRuleError(Exception):
    """A change the role rules forbid; the message is written for the person who tried."""


def _require_admin(by: Membership) -> None:
    if not by.is_admin:
        raise TeamRuleError("Only admins and owners manage the team.")


def _require_owner_to_grant(by: Membership, role: str) -> None:
    if role == Role.OWNER and not by.is_owner:
        raise TeamRuleError("Only an owner can make someone an owner.")


def _other_owners(target: Membership):
    return Membership.objects.filter(team_id=target.team_id, role=Role.OWNER).exclude(pk=target.pk)


def members_left_out_by(entry: AllowedEmail) -> list[Membership]:
    """Members of the entry's team that no other entry of that team would still admit."""
    members = Membership.objects.filter(team_id=entry.team_id).select_related("user")
    if entry.is_domain:
        members = members.filter(user__email__iendswith=entry.pattern)
    else:
        members = members.filter(user__email__iexact=entry.pattern)
    others = list(AllowedEmail.objects.filter(team_id=entry.team_id).exclude(pk=entry.pk))
    return [
        membership
        for membership in members
        if not any(other.admits(membership.user.email) for other in others)
    ]


def invite(by: Membership, email: str, role: str) -> tuple[AllowedEmail, bool]:
    """Allow-list one address for the team; returns the entry and whether an email should go out.

    A pending invitation is updated (and re-sent); a current member is not invited twice.
    """
    _require_admin(by)
    _require_owner_to_grant(by, role)
    email = email.strip().lower()
    with transaction.atomic():
        entry = AllowedEmail.objects.select_for_update().filter(pattern=email).first()
        user = User.objects.filter(email__iexact=email).select_related("membership").first()
        membership = user.team_membership if user else None
        if (entry and entry.team_id != by.team_id) or (
            membership and membership.team_id != by.team_id
        ):
            # Same words either way: another team's list is not this admin's business.
            raise TeamRuleError(f"{email} cannot be invited: it belongs to another team.")
        if membership is not None and entry is not None:
            raise TeamRuleError(f"{email} is already a member; change their role below.")
        # A member whose entry had been removed is let back in with their current role.
        granted = membership.role if membership is not None else role
        if entry is None:
            entry = AllowedEmail.objects.create(
                pattern=email, team_id=by.team_id, role=granted, created_by=by.user
            )
        elif entry.role != granted:
            entry.role = granted
            entry.save(update_fields=["role"])
        if user is not None and membership is None and not user.is_active:
            # Removed members are deactivated; inviting them again is how they come back.
            user.is_active = True
            user.save(update_fields=["is_active"])
    log.info("invited", extra={"team_id": by.team_id, "by": by.user_id, "role": entry.role})
    return entry, membership is None


def add_domain(by: Membership, domain: str, role: str) -> AllowedEmail:
    """Allow everyone at `domain` (`@example.com`) to log in to `by`'s team with `role`.

    A domain needs proof (issue 12): only an owner whose own address is at that domain may
    add it, so no team claims another's domain first. Raises TeamRuleError otherwise.
    """
    _require_admin(by)
    if role == Role.OWNER:
        raise TeamRuleError("A whole domain cannot make people owners; invite owners one by one.")
    if not by.is_owner:
        raise TeamRuleError("Only a team owner may allow a whole domain; invite people one by one.")
    if by.user.email.strip().lower().rsplit("@", 1)[-1] != domain.lstrip("@"):
        raise TeamRuleError(
            f"You can only allow {domain} if your own address is at it; "
            "invite people at other domains one by one."
        )
    with transaction.atomic():
        existing = AllowedEmail.objects.filter(pattern=domain).first()
        if existing is not None:
            if existing.team_id != by.team_id:
                raise TeamRuleError(f"{domain} cannot be added: it belongs to another team.")
            raise TeamRuleError(f"{domain} is already on the allow-list.")
        entry = AllowedEmail.objects.create(
            pattern=domain, team_id=by.team_id, role=role, created_by=by.user
        )
    log.info("allow-listed a domain", extra={"team_id": by.team_id, "by": by.user_id})
    return entry


def remove_entry(by: Membership, entry: AllowedEmail) -> list[Membership]:
    """Delete an allow-list entry; returns the members it leaves out (they can no longer log in
    or use their tokens). Owners cannot be left out by an admin, nor the last owner at all."""
    _require_admin(by)
    with transaction.atomic():
        left_out = members_left_out_by(entry)
        owners_left_out = [m for m in left_out if m.is_owner]
        if owners_left_out and not by.is_owner:
            raise TeamRuleError("Only an owner can remove the entry that lets an owner in.")
        owners = Membership.objects.filter(team_id=entry.team_id, role=Role.OWNER).count()
        if owners_left_out and len(owners_left_out) >= owners:
            raise TeamRuleError("This entry lets the last owner in; it cannot be removed.")
        entry.delete()
    log.info(
        "removed an allow-list entry",
        extra={"team_id": by.team_id, "by": by.user_id, "left_out": len(left_out)},
    )
    return left_out


def change_role(by: Membership, target: Membership, role: str) -> None:
    _require_admin(by)
    if role not in Role.values:
        raise TeamRuleError(f"{role!r} is not a role.")
    if target.is_owner and not by.is_owner:
        raise TeamRuleError("Only an owner can change an owner's role.")
    _require_owner_to_grant(by, role)
    with transaction.atomic():
        # Lock the team's owners so two owners demoting each other cannot both succeed.
        list(Membership.objects.select_for_update().filter(team_id=target.team_id, role=Role.OWNER))
        if target.is_owner and role != Role.OWNER and not _other_owners(target).exists():
            raise TeamRuleError("The last owner cannot step down; make someone else owner first.")
        target.role = role
        target.save(update_fields=["role"])
        # Keep the allow-list entry in step, so the role survives a re-created membership.
        AllowedEmail.objects.filter(pattern=target.user.email, team_id=target.team_id).update(
            role=role
        )
    log.info(
        "changed a role",
        extra={"team_id": target.team_id, "by": by.user_id, "user_id": target.user_id},
    )


def remove_member(by: Membership, target: Membership) -> None:
    """Take someone out of the team: membership, address entry and tokens go, and the account
    is deactivated so sessions end at once and a domain entry cannot readmit them."""
    _require_admin(by)
    if target.is_owner and not by.is_owner:
        raise TeamRuleError("Only an owner can remove an owner.")
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(team_id=target.team_id, role=Role.OWNER))
        if target.is_owner and not _other_owners(target).exists():
            raise TeamRuleError("The last owner cannot leave; make someone else owner first.")
        user = target.user
        AllowedEmail.objects.filter(pattern=user.email, team_id=target.team_id).delete()
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        target.delete()
        user.is_active = False
        user.save(update_fields=["is_active"])
    log.info(
        "removed a member",
        extra={"team_id": target.team_id, "by": by.user_id, "user_id": user.pk},
    )
