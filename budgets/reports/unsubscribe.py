"""One-click unsubscribe links for report emails (RFC 8058 List-Unsubscribe-Post).

The token is signed with SECRET_KEY (django.core.signing) and names a person and a report
kind; it does not expire, because an old email's link must still work.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "budgets.reports.unsubscribe"


def make_token(user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=SALT, compress=True)


def read_token(token: str) -> tuple[int, str] | None:
    """(user id, report kind), or None when the token was not made here or was altered."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data["u"], str(data.get("k", ""))


def link(user_id: int, kind: str) -> str:
    """The absolute unsubscribe URL for one person and one report kind."""
    return settings.SITE_URL + reverse("report_unsubscribe", args=[make_token(user_id, kind)])
