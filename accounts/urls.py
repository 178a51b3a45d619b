"""Login routes (under /accounts/) and the settings pages (under /settings/).

Only the parts of allauth we use are routed: no sign-up, password or email-management pages.
"""

from allauth.account import views as allauth_views
from django.urls import path
from django.views.generic import RedirectView

from accounts import confirm, views

urlpatterns = [
    path("login/", views.login_view, name="account_login"),
    # allauth sends people here when a code has expired; it is the same login page.
    path(
        "login/code/",
        RedirectView.as_view(pattern_name="account_login", query_string=True),
        name="account_request_login_code",
    ),
    path(
        "login/code/confirm/",
        allauth_views.confirm_login_code,
        name="account_confirm_login_code",
    ),
    path("login/link/<str:token>/", views.login_link, name="login_link"),
    path("logout/", allauth_views.logout, name="account_logout"),
    path("inactive/", allauth_views.account_inactive, name="account_inactive"),
]

settings_urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:public_id>/revoke/", views.token_revoke, name="token_revoke"),
    path(
        "tokens/<uuid:public_id>/revoke/confirm/",
        confirm.token_revoke_confirm,
        name="token_revoke_confirm",
    ),
    path("team/", views.team_settings, name="team_settings"),
    path("team/members/", views.team_members, name="team_members"),
    path("team/members/invite/", views.member_invite, name="member_invite"),
    path("team/members/<uuid:public_id>/role/", views.member_role, name="member_role"),
    path("team/members/<uuid:public_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "team/members/<uuid:public_id>/remove/confirm/",
        confirm.member_remove_confirm,
        name="member_remove_confirm",
    ),
    path("team/allow-list/domains/", views.domain_add, name="domain_add"),
    path(
        "team/allow-list/<uuid:public_id>/remove/",
        views.allowed_remove,
        name="allowed_remove",
    ),
]
