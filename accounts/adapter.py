"""allauth adapter: no sign-up form, the allow-list rule at every login, and the magic link.

Every login-code email allauth sends also carries a fresh cross-device link (accounts.views
`login_link`), so the person can finish in any browser, or type the code in the one that asked.
That email is rendered here but sent by a task (accounts.views.LoginView writes what
`outgoing_login_mail` collected to the outbox, accounts.models.LoginMail, and queues it), so a
slow or broken SMTP server never changes the answer and a broker that is down only delays it.
"""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.stagekit import clear_login
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from accounts.login import (
    client_ip,
    end_pending_links,
    grant_membership,
    is_admitted,
    safe_next_url,
)
from accounts.models import LoginLink, User

log = logging.getLogger(__name__)

LOGIN_CODE_MAIL = "account/email/login_code"


def outgoing_login_mail(request) -> list[dict]:
    """Login emails rendered during this request and not sent yet: dicts of subject, body,
    from_email and to (a list of addresses), as accounts.tasks.send_login_mail takes them."""
    if not hasattr(request, "_outgoing_login_mail"):
        request._outgoing_login_mail = []
    return request._outgoing_login_mail


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # Accounts are created from the allow-list at first login, never by a sign-up form.
        return False

    def is_safe_url(self, url: str | None) -> bool:
        # Stricter than allauth's default: only our own paths, never another host.
        return safe_next_url(url) is not None

    def pre_login(self, request, user, **kwargs):
        # The allow-list may have changed since the code was sent: check again at the door.
        if not is_admitted(user):
            log.warning("login refused: not admitted", extra={"user_id": user.pk})
            return self._refuse(request, "This login is no longer allowed. Ask your team admin.")
        code = request.POST.get("code", "") if request.method == "POST" else ""
        if code and LoginLink.spent_for_code(user, code):
            # One email, one login: its link was used already, so its code is spent too.
            log.warning("login refused: code of a used link", extra={"user_id": user.pk})
            return self._refuse(request, "This code was already used. Ask for a new one.")
        return super().pre_login(request, user, **kwargs)

    def _refuse(self, request, message: str):
        clear_login(request)
        messages.error(request, message)
        return redirect("account_login")

    def login(self, request, user) -> None:
        grant_membership(user)
        end_pending_links(user)
        super().login(request, user)
        log.info("user logged in", extra={"user_id": user.pk})

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        if template_prefix != LOGIN_CODE_MAIL:
            super().send_mail(template_prefix, email, context)
            return
        request = context["request"]
        context = {**context, "email": email, "link_url": self._issue_login_link(email, context)}
        message = self.render_mail(template_prefix, email, context)
        outgoing_login_mail(request).append(
            {
                "subject": message.subject,
                "body": message.body,
                "from_email": message.from_email,
                "to": list(message.to),
            }
        )

    def _issue_login_link(self, email: str, context: dict) -> str:
        request = context["request"]
        user = User.objects.get(email__iexact=email)
        next_url = safe_next_url(request.POST.get("next") or request.GET.get("next")) or ""
        _, signed = LoginLink.issue(
            user, next_url=next_url, ip=client_ip(request), code=context.get("code", "")
        )
        return settings.SITE_URL + reverse("login_link", args=[signed])
