"""Magic-link login: who gets a link, what the link and code do, and what they never do."""

import re
import socket
from datetime import timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AllowedEmail, LoginLink, Membership, Role, User, hash_token
from tests.accounts.conftest import ask_for_link, code_in, link_path

pytestmark = pytest.mark.django_db


def logged_in_user_id(client) -> str | None:
    return client.session.get(SESSION_KEY)


def normalised(html: str, email: str) -> str:
    """The page without what legitimately differs: the address typed and CSRF tokens."""
    html = html.replace(email, "EMAIL")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)


def test_the_login_page_asks_only_for_an_email_address(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="email"' in body
    assert 'type="password"' not in body


def test_a_member_gets_one_email_with_a_link_and_a_code(client, member, mailoutbox):
    response = ask_for_link(client, member.email)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_confirm_login_code"))
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [member.email]
    assert link_path(message).startswith("/accounts/login/link/")
    assert len(code_in(message)) >= 6


def test_the_link_secret_is_stored_only_as_a_hash(client, member, mailoutbox):
    ask_for_link(client, member.email)
    signed = link_path(mailoutbox[0]).rstrip("/").rsplit("/", 1)[1]
    raw = signed.split(":", 1)[0]
    link = LoginLink.objects.get()
    assert link.token_hash == hash_token(raw)
    stored = " ".join(str(v) for v in LoginLink.objects.values_list().get())
    assert raw not in stored


def test_an_unknown_address_gets_no_email_and_the_same_page(client, member, mailoutbox):
    known = ask_for_link(client, member.email, HTTP_HOST="127.0.0.1")
    known_page = Client().get(known["Location"])  # fresh browser has no pending login
    assert known_page.status_code == 302  # sanity: the page needs the browser that asked

    known_page = client.get(known["Location"])
    mails_for_known = len(mailoutbox)

    other = Client()
    unknown = ask_for_link(other, "nobody@nowhere.example")
    unknown_page = other.get(unknown["Location"])

    assert mails_for_known == 1
    assert len(mailoutbox) == 1, "an unknown address must not receive anything"
    assert unknown.status_code == known.status_code == 302
    assert unknown_page.status_code == known_page.status_code == 200
    assert normalised(unknown_page.content.decode(), "nobody@nowhere.example") == normalised(
        known_page.content.decode(), member.email
    )


def test_a_deactivated_member_gets_no_email(client, member, mailoutbox):
    member.is_active = False
    member.save()
    response = ask_for_link(client, member.email)
    assert response.status_code == 302
    assert mailoutbox == []


def test_a_member_whose_allow_list_entry_was_removed_gets_no_email(client, member, mailoutbox):
    AllowedEmail.objects.filter(pattern=member.email).delete()
    ask_for_link(client, member.email)
    assert mailoutbox == []


def test_opening_the_link_shows_a_confirm_button_and_does_not_log_in(client, member, mailoutbox):
    ask_for_link(client, member.email)
    browser = Client()  # another device
    response = browser.get(link_path(mailoutbox[0]))
    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert logged_in_user_id(browser) is None
    assert LoginLink.objects.get().used_at is None


def test_confirming_the_link_in_another_browser_logs_in(client, member, mailoutbox):
    ask_for_link(client, member.email)
    browser = Client()
    response = browser.post(link_path(mailoutbox[0]))
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(browser) == str(member.pk)
    assert browser.get("/").status_code == 200


def test_a_link_works_only_once(client, member, mailoutbox):
    ask_for_link(client, member.email)
    path = link_path(mailoutbox[0])
    assert Client().post(path).status_code == 302
    second = Client()
    response = second.post(path)
    assert response.status_code == 404
    assert logged_in_user_id(second) is None
    assert second.get(path).status_code == 404


def test_a_link_expires_after_fifteen_minutes(client, member, mailoutbox):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ask_for_link(client, member.email)
        path = link_path(mailoutbox[0])
        clock.shift(timedelta(minutes=14))
        assert Client().get(path).status_code == 200
        clock.shift(timedelta(minutes=1, seconds=1))
        browser = Client()
        assert browser.post(path).status_code == 404
        assert logged_in_user_id(browser) is None


def test_a_forged_link_is_refused_without_touching_the_database(
    client, member, mailoutbox, django_assert_num_queries
):
    ask_for_link(client, member.email)
    path = link_path(mailoutbox[0])
    forged = path[:-3] + ("a" if path[-3] != "a" else "b") + path[-2:]
    browser = Client()
    with django_assert_num_queries(0):
        response = browser.get(forged)
    assert response.status_code == 404


def test_a_link_stops_working_when_the_allow_list_entry_is_removed(client, member, mailoutbox):
    ask_for_link(client, member.email)
    AllowedEmail.objects.filter(pattern=member.email).delete()
    browser = Client()
    assert browser.post(link_path(mailoutbox[0])).status_code == 404
    assert logged_in_user_id(browser) is None


def test_a_link_stops_working_when_the_user_is_deactivated(client, member, mailoutbox):
    ask_for_link(client, member.email)
    User.objects.filter(pk=member.pk).update(is_active=False)
    browser = Client()
    assert browser.post(link_path(mailoutbox[0])).status_code == 404
    assert logged_in_user_id(browser) is None


def test_the_code_logs_in_the_browser_that_asked(client, member, mailoutbox):
    response = ask_for_link(client, member.email)
    confirm = client.post(response["Location"], {"code": code_in(mailoutbox[0])})
    assert confirm.status_code == 302
    assert logged_in_user_id(client) == str(member.pk)
    # The link of the same email is spent by that login.
    assert Client().post(link_path(mailoutbox[0])).status_code == 404


def test_the_code_is_spent_once_its_link_was_used_elsewhere(client, member, mailoutbox):
    response = ask_for_link(client, member.email)
    Client().post(link_path(mailoutbox[0]))
    code = code_in(mailoutbox[0]).lower().replace("-", " ")  # typed loosely, still that code
    refused = client.post(response["Location"], {"code": code})
    assert refused.status_code == 302
    assert refused["Location"] == reverse("account_login")
    assert logged_in_user_id(client) is None


def test_the_code_is_refused_after_the_allow_list_entry_is_removed(client, member, mailoutbox):
    response = ask_for_link(client, member.email)
    AllowedEmail.objects.filter(pattern=member.email).delete()
    client.post(response["Location"], {"code": code_in(mailoutbox[0])})
    assert logged_in_user_id(client) is None


def test_a_wrong_code_does_not_log_in(client, member, mailoutbox):
    response = ask_for_link(client, member.email)
    page = client.post(response["Location"], {"code": "WRONG1"})
    assert page.status_code == 200
    assert logged_in_user_id(client) is None


def test_first_login_from_an_allowed_domain_creates_the_user_and_membership(
    client, team_a, mailoutbox
):
    AllowedEmail.objects.create(pattern="@new.example", team=team_a, role=Role.ADMIN)
    ask_for_link(client, "Newcomer@New.Example")
    assert len(mailoutbox) == 1
    assert not Membership.objects.filter(user__email="newcomer@new.example").exists()
    browser = Client()
    browser.post(link_path(mailoutbox[0]))
    user = User.objects.get(email="newcomer@new.example")
    assert logged_in_user_id(browser) == str(user.pk)
    assert user.membership.team == team_a
    assert user.membership.role == Role.ADMIN
    assert not user.has_usable_password()


def test_an_address_outside_the_allow_list_never_becomes_a_user(client, team_a, mailoutbox):
    AllowedEmail.objects.create(pattern="@new.example", team=team_a)
    ask_for_link(client, "someone@elsewhere.example")
    assert mailoutbox == []
    assert not User.objects.filter(email="someone@elsewhere.example").exists()


def test_asking_too_often_for_one_address_is_refused(client, member, mailoutbox):
    for _ in range(3):
        assert ask_for_link(client, member.email).status_code == 302
    response = ask_for_link(client, member.email)
    assert response.status_code == 200
    assert "Too many" in response.content.decode()
    assert len(mailoutbox) == 3


def test_strangers_asking_for_an_address_from_many_clients_do_not_lock_its_owner_out(
    member, mailoutbox
):
    for i in range(10):
        stranger = Client(REMOTE_ADDR=f"203.0.113.{i}")
        for _ in range(4):
            ask_for_link(stranger, member.email)
    sent_to_strangers = len(mailoutbox)
    response = ask_for_link(Client(REMOTE_ADDR="198.51.100.7"), member.email)
    assert response.status_code == 302
    assert len(mailoutbox) == sent_to_strangers + 1


def test_one_client_asking_for_one_address_waits_a_minute_then_an_hour(member, mailoutbox):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):
            assert ask_for_link(Client(), member.email).status_code == 302
        assert "Too many" in ask_for_link(Client(), member.email).content.decode()
        for _ in range(7):
            clock.shift(timedelta(seconds=61))
            assert ask_for_link(Client(), member.email).status_code == 302
        clock.shift(timedelta(seconds=61))
        assert "Too many" in ask_for_link(Client(), member.email).content.decode()
        clock.shift(timedelta(minutes=55))  # the first asks leave the hour
        assert ask_for_link(Client(), member.email).status_code == 302
    assert len(mailoutbox) == 11


def test_asking_too_often_from_one_ip_is_refused(client, team_a, mailoutbox):
    AllowedEmail.objects.create(pattern="@many.example", team=team_a)
    for i in range(20):
        assert ask_for_link(client, f"person{i}@many.example").status_code == 302
    response = ask_for_link(client, "late@many.example")
    assert response.status_code == 200
    assert "Too many" in response.content.decode()
    assert len(mailoutbox) == 20
    # Another address from another IP is still served.
    other = ask_for_link(Client(REMOTE_ADDR="10.0.0.9"), "late@many.example")
    assert other.status_code == 302
    assert len(mailoutbox) == 21


def test_confirming_links_is_rate_limited_per_ip(client, member):
    for _ in range(30):
        Client().post("/accounts/login/link/nonsense/")
    response = Client().post("/accounts/login/link/nonsense/")
    assert response.status_code == 429
    assert response["Retry-After"]


@pytest.mark.parametrize(
    "next_url, lands_on",
    [
        ("/settings/tokens/", "/settings/tokens/"),
        ("/settings/tokens/?x=1", "/settings/tokens/?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("http://127.0.0.1:8000/settings/tokens/", "/"),
        ("/no-such-page/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_redirects_only_to_our_own_pages(client, member, mailoutbox, next_url, lands_on):
    ask_for_link(client, member.email, next_url)
    response = Client().post(link_path(mailoutbox[0]))
    assert response.status_code == 302
    assert response["Location"] == lands_on


def test_next_is_kept_when_logging_in_with_the_code(client, member, mailoutbox):
    response = ask_for_link(client, member.email, "/settings/profile/")
    confirm = client.post(response["Location"], {"code": code_in(mailoutbox[0])})
    assert confirm["Location"] == "/settings/profile/"


def test_a_logged_in_visitor_is_sent_on_from_the_login_page(client, member):
    client.force_login(member)
    assert client.get(reverse("account_login"))["Location"] == "/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_login_email_goes_through_a_real_smtp_server(client, member, settings):
    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        assert ask_for_link(client, member.email).status_code == 302
    finally:
        controller.stop()
    assert len(received) == 1
    assert received[0]["To"] == member.email
    assert "/accounts/login/link/" in received[0].get_payload()


def test_there_are_no_password_or_sign_up_pages(client):
    for path in [
        "/accounts/password/reset/",
        "/accounts/password/change/",
        "/accounts/password/set/",
        "/accounts/signup/",
        "/accounts/email/",
    ]:
        assert client.get(path).status_code == 404, path


def test_the_admin_login_is_the_magic_link(client):
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Faccounts%2Fuser%2F"


def test_an_operator_reaches_the_admin_through_the_link(client, member, mailoutbox):
    User.objects.filter(pk=member.pk).update(is_staff=True, is_superuser=True)
    response = client.get("/admin/")
    assert response.status_code == 302
    login_page = client.get(response["Location"], follow=True)
    assert login_page.status_code == 200
    ask_for_link(client, member.email, "/admin/")
    browser = Client()
    response = browser.post(link_path(mailoutbox[0]))
    assert response["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/password_change/").status_code == 404


def test_a_signed_in_non_operator_gets_403_from_the_admin_login(client, member):
    client.force_login(member)
    assert client.get("/admin/login/").status_code == 403


def test_logging_out_takes_a_post(client, member):
    client.force_login(member)
    assert client.get(reverse("account_logout")).status_code == 200
    assert logged_in_user_id(client) == str(member.pk)
    client.post(reverse("account_logout"))
    assert logged_in_user_id(client) is None
