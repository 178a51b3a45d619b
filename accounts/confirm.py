"""Confirmation pages for the settings actions that take effect at once (revoke a token,
remove a member): a GET page that says what will stop working, whose form POSTs to the
unchanged action view. It works without JavaScript."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from accounts.models import ApiToken, Membership
from accounts.views import team_admin_required


@login_required
def token_revoke_confirm(request, public_id) -> HttpResponse:
    """Confirm revoking one of the viewer's own usable tokens; anyone else's, or one already
    revoked or expired, is 404."""
    token = get_object_or_404(ApiToken.objects.usable(), public_id=public_id, user=request.user)
    last_used = token.last_used_at
    effects = [
        "Every agent, script or MCP client that sends this token is refused from now on "
        "(401): an agent with it stops syncing until it is given a new token.",
        "Usage already stored stays in every figure.",
        "This cannot be undone; you can create a new token instead.",
    ]
    if last_used is None:
        effects.insert(0, "This token has never been used.")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Revoke the token “{token.name}”?",
            "effects": effects,
            "last_used": last_used,
            "action_url": reverse("token_revoke", args=[token.public_id]),
            "action_label": "Revoke the token",
            "cancel_url": reverse("tokens"),
        },
    )


@team_admin_required
def member_remove_confirm(request, membership: Membership, public_id) -> HttpResponse:
    """Confirm removing a member of the viewer's team (admins and owners; only an owner may
    remove an owner, as accounts.team.remove_member rules); other teams' people are 404."""
    target = get_object_or_404(
        Membership.objects.select_related("user").annotate(
            active_tokens=Count("user__api_tokens", filter=Q(user__api_tokens__revoked_at=None))
        ),
        team=membership.team,
        user__public_id=public_id,
    )
    if target.is_owner and not membership.is_owner:
        raise PermissionDenied("Only an owner can remove an owner.")
    leaving = target.user_id == request.user.pk
    tokens = target.active_tokens  # type: ignore[attr-defined]  # the annotation above
    if leaving:
        effects = [
            "You are logged out at once and cannot log in again until someone invites you.",
            f"Your API tokens ({tokens}) are revoked: agents using them stop syncing.",
        ]
    else:
        effects = [
            f"{target.user.email} is logged out at once and cannot log in again; inviting the "
            "address again lets them back.",
            f"Their API tokens ({tokens}) are revoked: agents using them stop syncing.",
        ]
    effects += [
        "The address is taken off the team's allow-list.",
        "Usage already stored stays in the team's figures.",
    ]
    return render(
        request,
        "confirm.html",
        {
            "title": "Leave the team?" if leaving else f"Remove {target.user.email} from the team?",
            "effects": effects,
            "action_url": reverse("member_remove", args=[target.user.public_id]),
            "action_label": "Leave the team" if leaving else "Remove the member",
            "cancel_url": reverse("team_members"),
        },
    )
