"""Who may log in and what a login grants: the allow-list rule, first-login membership, next URLs.

The same rule guards the login form, the login itself and every API token (accounts.auth), so
deactivating a user or removing their allow-list entry stops all three at once.
"""

import ipaddress
import logging

from allauth.account.adapter import get_adapter
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import AllowedEmail, LoginLink, Membership, User

log = logging.getLogger(__name__)


def is_admitted(user: User) -> bool:
    """May this user log in (and use their tokens) right now?

    A member needs an allow-list entry of their own team that matches their address; a user
    without a team needs any entry (their first login joins that team). Operators created as
    staff without a team may log in to reach the Django admin.
    """
    if not user.is_active:
        return False
    entry = AllowedEmail.match(user.email)
    membership = user.team_membership
    if membership is not None:
        return entry is not None and entry.team_id == membership.team_id
    return entry is not None or user.is_staff


def user_for_login(email: str) -> User | None:
    """The user a login code and link are sent to, or None when this address may not log in.

    An allow-listed address that has never logged in gets its User row now, because allauth
    binds the code to a user; its membership is granted only when the login completes.
    """
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).select_related("membership").first()
    if user is not None:
        return user if is_admitted(user) else None
    if AllowedEmail.match(email) is None:
        return None
    try:
        with transaction.atomic():
            return User.objects.create_user(email)
    except IntegrityError:
        # Two requests for the same new address raced; the other one created the row.
        return User.objects.filter(email__iexact=email).first()


def grant_membership(user: User) -> Membership | None:
    """On login, give a user without a team the membership their allow-list entry grants."""
    if user.team_membership is not None:
        return user.team_membership
    entry = AllowedEmail.match(user.email)
    if entry is None:
        return None
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, defaults={"team": entry.team, "role": entry.role}
        )
    if created:
        log.info(
            "first login joined a team",
            extra={"user_id": user.pk, "team": entry.team.slug, "role": entry.role},
        )
    user.membership = membership
    return membership


def end_pending_links(user: User) -> int:
    """After any login, the other links of that request are spent too."""
    return LoginLink.objects.filter(user=user, used_at__isnull=True).update(used_at=timezone.now())


def safe_next_url(url: str | None) -> str | None:
    """`next` may only point to one of our own pages: a local path that our URLconf knows."""
    if not url or len(url) > 2000:
        return None
    if not url.startswith("/") or url.startswith(("//", "/\\")):
        return None
    if not url_has_allowed_host_and_scheme(url, allowed_hosts=set(), require_https=False):
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    try:
        resolve(path)
    except Resolver404:
        return None
    return url


def client_ip(request) -> str | None:
    """The client's address as the rate limits see it (honours ALLAUTH_TRUSTED_PROXY_COUNT)."""
    try:
        ip = get_adapter(request).get_client_ip(request)
    except (PermissionDenied, ImproperlyConfigured):
        ip = request.META.get("REMOTE_ADDR")
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None
