"""Login pages (email form, cross-device link) and the settings pages: profile, tokens, team.

Every mutation is a POST behind CSRF; objects of other teams or users are 404, pages a role may
not use are 403. The rules themselves live in accounts.team and accounts.login.
"""

import logging
import shlex
import smtplib
from functools import wraps
from urllib.parse import urlencode

from allauth.account.utils import perform_login
from allauth.account.views import RequestLoginCodeView
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import tasks
from accounts import team as team_rules
from accounts.access import membership_of
from accounts.adapter import outgoing_login_mail
from accounts.forms import (
    DomainForm,
    InviteForm,
    ProfileForm,
    RequestLinkForm,
    RoleForm,
    TeamSettingsForm,
    TokenCreateForm,
    role_choices_for,
)
from accounts.login import client_ip, is_admitted
from accounts.models import AllowedEmail, ApiToken, LoginLink, LoginMail, Membership
from telemetry_site.queueing import enqueue

log = logging.getLogger(__name__)

# Failures of the mail system are shown as "try again", never as a server error.
MAIL_ERRORS = (smtplib.SMTPException, OSError)


# --- Login --------------------------------------------------------------------------------


class LoginView(RequestLoginCodeView):
    """Ask for an address; allowed ones get a code and a link, the answer is always the same."""

    form_class = RequestLinkForm
    template_name = "account/login.html"

    def get_form_class(self):
        return self.form_class

    def _redirect_to_pending_stage(self, request, stage):
        # "Ask again" (another address, or a lost email) must reach this form, not the code page;
        # a new request replaces the pending one.
        return None

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        # Written to the outbox and sent by the worker, so every address gets the same answer
        # in the same time whether SMTP is slow or down; a broker that is down delays the mail
        # until the sweep (accounts.tasks.sweep_login_mail) finds it, never loses it.
        for mail in outgoing_login_mail(self.request):
            outbox = LoginMail.write(**mail)
            enqueue(
                tasks.deliver_login_mail,
                outbox.pk,
                then="the login mail sweep sends it once the broker answers",
            )
        return response


login_view = never_cache(LoginView.as_view())


def _link_invalid(request) -> HttpResponse:
    return render(request, "account/login_link_invalid.html", status=404)


@never_cache
def login_link(request, token: str) -> HttpResponse:
    """GET shows a confirm button (mail scanners only GET); only the POST logs in."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    if request.method == "POST" and not ratelimit.consume(request, action="login"):
        response = render(request, "account/login_link_invalid.html", {"limited": True}, status=429)
        response["Retry-After"] = "60"
        return response
    link = LoginLink.find(token)
    if link is None or not is_admitted(link.user):
        return _link_invalid(request)
    if request.method != "POST":
        return render(request, "account/login_link_confirm.html", {"link": link})
    if not link.claim(client_ip(request)):
        # Another request used this link a moment ago.
        return _link_invalid(request)
    log.info("login link used", extra={"user_id": link.user_id})
    return perform_login(
        request, link.user, redirect_url=link.next_url or None, email=link.user.email
    )


def admin_login(request, extra_context=None) -> HttpResponse:
    """The Django admin logs in through the magic link like everyone else."""
    if request.user.is_authenticated:
        if request.user.is_staff:
            return redirect("admin:index")
        # Without this a signed-in non-operator would bounce between admin and login.
        raise PermissionDenied("Your account has no access to the Django admin.")
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")


def admin_password_change(request, extra_context=None) -> HttpResponse:
    """There are no passwords here, so the admin's password pages do not exist."""
    raise Http404("There are no passwords to change.")


# --- Settings pages ----------------------------------------------------------------------


def team_admin_required(view):
    """Logged in, in a team, and admin or owner of it; the view gets the viewer's membership."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = membership_of(request.user)
        if membership is None or not membership.is_admin:
            raise PermissionDenied("Only the team's admins and owners can open this page.")
        return view(request, membership, *args, **kwargs)

    return wrapper


@login_required
def profile(request) -> HttpResponse:
    team = request.user.team
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=request.user, team=team)
        if form.is_valid():
            form.save()
            messages.success(request, "Profile saved.")
            return redirect("profile")
    else:
        form = ProfileForm(instance=request.user, team=team)
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "team": team, "membership": membership_of(request.user)},
    )


@never_cache
@login_required
@sensitive_post_parameters()
def tokens(request) -> HttpResponse:
    created = raw_token = None
    if request.method == "POST":
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            created, raw_token = ApiToken.issue(
                request.user,
                form.cleaned_data["name"],
                form.cleaned_data["scopes"],
                expires_at=form.cleaned_data["expires_on"],
            )
            log.info("token created", extra={"user_id": request.user.pk, "token": created.pk})
            form = TokenCreateForm()
    else:
        form = TokenCreateForm()
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "created": created,
        # Shown once, in this response only; the database keeps just its hash.
        "raw_token": raw_token,
        # The token's name as the machine's, quoted for a shell (POSIX and PowerShell take
        # single quotes) and joined with "=" so a name starting with "-" is no option.
        "setup_name_arg": f"--name={shlex.quote(created.name)}" if created else "",
        "site_url": settings.SITE_URL,
    }
    return render(request, "accounts/tokens.html", context, status=201 if created else 200)


@login_required
@require_POST
def token_revoke(request, public_id) -> HttpResponse:
    token = get_object_or_404(ApiToken, public_id=public_id, user=request.user)
    token.revoke()
    log.info("token revoked", extra={"user_id": request.user.pk, "token": token.pk})
    messages.success(request, f"Token “{token.name}” revoked; it stops working now.")
    return redirect("tokens")


@team_admin_required
def team_settings(request, membership: Membership) -> HttpResponse:
    team = membership.team
    if request.method == "POST":
        form = TeamSettingsForm(request.POST, instance=team)
        if form.is_valid():
            form.save()
            log.info("team settings saved", extra={"team_id": team.pk, "by": request.user.pk})
            messages.success(request, "Team settings saved.")
            return redirect("team_settings")
    else:
        form = TeamSettingsForm(instance=team)
    return render(request, "accounts/team_settings.html", {"form": form, "team": team})


def _members_context(membership: Membership, **forms) -> dict:
    team = membership.team
    members = list(
        Membership.objects.filter(team=team)
        .select_related("user")
        .annotate(
            active_tokens=Count("user__api_tokens", filter=Q(user__api_tokens__revoked_at=None))
        )
        .order_by("user__email")
    )
    entries = list(AllowedEmail.objects.filter(team=team).order_by("pattern"))
    for m in members:
        m.admitted = m.user.is_active and any(e.admits(m.user.email) for e in entries)
    member_emails = {m.user.email for m in members}
    can_grant_owner = membership.is_owner
    return {
        "team": team,
        "viewer": membership,
        "members": members,
        "invitations": [e for e in entries if not e.is_domain and e.pattern not in member_emails],
        "domains": [e for e in entries if e.is_domain],
        "member_entries": [e for e in entries if e.pattern in member_emails],
        "invite_form": forms.get("invite_form") or InviteForm(can_grant_owner=can_grant_owner),
        "domain_form": forms.get("domain_form") or DomainForm(),
        "role_choices": role_choices_for(can_grant_owner),
    }


@team_admin_required
def team_members(request, membership: Membership) -> HttpResponse:
    return render(request, "accounts/team_members.html", _members_context(membership))


def _send_invitation(request, entry: AllowedEmail) -> None:
    context = {
        "team": entry.team,
        "inviter": request.user,
        "role": entry.get_role_display(),
        "login_url": settings.SITE_URL + reverse("account_login"),
    }
    subject = render_to_string("accounts/email/invitation_subject.txt", context).strip()
    body = render_to_string("accounts/email/invitation_message.txt", context)
    send_mail(subject, body, None, [entry.pattern])


@team_admin_required
@require_POST
def member_invite(request, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST, can_grant_owner=membership.is_owner)
    if not form.is_valid():
        context = _members_context(membership, invite_form=form)
        return render(request, "accounts/team_members.html", context, status=400)
    try:
        entry, send = team_rules.invite(
            membership, form.cleaned_data["email"], form.cleaned_data["role"]
        )
    except team_rules.TeamRuleError as exc:
        form.add_error("email", str(exc))
        context = _members_context(membership, invite_form=form)
        return render(request, "accounts/team_members.html", context, status=400)
    if not send:
        messages.success(request, f"{entry.pattern} may log in again.")
        return redirect("team_members")
    try:
        _send_invitation(request, entry)
    except MAIL_ERRORS:
        log.exception("could not send an invitation")
        messages.warning(
            request,
            f"{entry.pattern} is on the allow-list, but the invitation email could not be "
            "sent. They can log in from the login page with that address.",
        )
    else:
        messages.success(request, f"Invitation sent to {entry.pattern}.")
    return redirect("team_members")


@team_admin_required
@require_POST
def member_role(request, membership: Membership, public_id) -> HttpResponse:
    target = get_object_or_404(
        Membership.objects.select_related("user"), team=membership.team, user__public_id=public_id
    )
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles.")
        return redirect("team_members")
    try:
        team_rules.change_role(membership, target, form.cleaned_data["role"])
    except team_rules.TeamRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("team_members")


@team_admin_required
@require_POST
def member_remove(request, membership: Membership, public_id) -> HttpResponse:
    target = get_object_or_404(
        Membership.objects.select_related("user"), team=membership.team, user__public_id=public_id
    )
    email, leaving = target.user.email, target.user_id == request.user.pk
    try:
        team_rules.remove_member(membership, target)
    except team_rules.TeamRuleError as exc:
        messages.error(request, str(exc))
        return redirect("team_members")
    if leaving:
        logout(request)
        return redirect("account_login")
    messages.success(request, f"{email} was removed; their tokens no longer work.")
    return redirect("team_members")


@team_admin_required
@require_POST
def domain_add(request, membership: Membership) -> HttpResponse:
    form = DomainForm(request.POST)
    if form.is_valid():
        try:
            team_rules.add_domain(
                membership, form.cleaned_data["domain"], form.cleaned_data["role"]
            )
        except team_rules.TeamRuleError as exc:
            form.add_error("domain", str(exc))
    if not form.is_valid():
        context = _members_context(membership, domain_form=form)
        return render(request, "accounts/team_members.html", context, status=400)
    messages.success(request, f"Everyone at {form.cleaned_data['domain']} may now log in.")
    return redirect("team_members")


@team_admin_required
@require_POST
def allowed_remove(request, membership: Membership, public_id) -> HttpResponse:
    entry = get_object_or_404(AllowedEmail, team=membership.team, public_id=public_id)
    try:
        left_out = team_rules.remove_entry(membership, entry)
    except team_rules.TeamRuleError as exc:
        messages.error(request, str(exc))
        return redirect("team_members")
    note = ""
    if left_out:
        emails = ", ".join(m.user.email for m in left_out)
        note = f" {emails} can no longer log in or use their tokens."
    messages.success(request, f"{entry.pattern} removed from the allow-list.{note}")
    return redirect("team_members")
