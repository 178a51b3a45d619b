"""API tokens: shape, hashing, scopes, and every way a token stops working."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import TOKEN_PREFIX, AllowedEmail, ApiToken, User
from tests.conftest import api_client, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.probe_urls")]


def test_a_token_has_the_documented_shape_and_only_its_hash_is_stored(member):
    token, raw = ApiToken.issue(member, "laptop", ["ingest"])
    assert raw.startswith(TOKEN_PREFIX)
    assert len(raw) == len(TOKEN_PREFIX) + 43
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:8]
    assert token.last_four == raw[-4:]
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(raw in str(value) for value in row.values())
    assert not any(raw[len(TOKEN_PREFIX) : -4] in str(value) for value in row.values())


def test_two_tokens_never_share_a_secret(member):
    raws = {ApiToken.issue(member, "x", ["read"])[1] for _ in range(20)}
    assert len(raws) == 20


def test_issuing_a_token_without_a_valid_scope_is_refused(member):
    with pytest.raises(ValueError):
        ApiToken.issue(member, "x", [])
    with pytest.raises(ValueError):
        ApiToken.issue(member, "x", ["admin"])


def test_a_read_token_reads(member):
    response = api_client(token_for(member, ["read"])).get("/probe/read/")
    assert response.status_code == 200
    assert response.json() == {"user": member.email}


def test_a_token_without_the_scope_gets_403(member):
    client = api_client(token_for(member, ["ingest"]))
    response = client.get("/probe/read/")
    assert response.status_code == 403
    assert "read" in response.json()["detail"]
    assert client.get("/probe/ingest/").status_code == 200


def test_no_token_gets_401_with_a_bearer_challenge(db):
    response = api_client().get("/probe/read/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer cct_short",
        "Bearer " + TOKEN_PREFIX + "!" * 43,
        "Bearer " + "xyz_" + "a" * 43,
        "Bearer a b",
        "Token " + TOKEN_PREFIX + "a" * 43,
        "Bearer",
    ],
)
def test_a_malformed_token_is_refused_before_any_query(db, header, django_assert_max_num_queries):
    client = Client(HTTP_AUTHORIZATION=header)
    with django_assert_max_num_queries(20) as queries:
        response = client.get("/probe/read/")
    assert response.status_code == 401
    # Only the failed-authentication counter may touch the database (its cache, without Redis).
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "apitoken" not in tables.lower()


def test_an_unknown_well_formed_token_gets_401(db):
    response = api_client(TOKEN_PREFIX + "a" * 43).get("/probe/read/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown API token."


def test_a_revoked_token_gets_401(member):
    raw = token_for(member)
    ApiToken.objects.get().revoke()
    response = api_client(raw).get("/probe/read/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_token_gets_401(member):
    _, raw = ApiToken.issue(member, "x", ["read"], expires_at=timezone.now() + timedelta(days=1))
    assert api_client(raw).get("/probe/read/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = api_client(raw).get("/probe/read/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_deactivated_owners_token_gets_401(member):
    raw = token_for(member)
    User.objects.filter(pk=member.pk).update(is_active=False)
    response = api_client(raw).get("/probe/read/")
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]


def test_removing_the_allow_list_entry_stops_the_owners_tokens(member):
    raw = token_for(member)
    AllowedEmail.objects.filter(pattern=member.email).delete()
    response = api_client(raw).get("/probe/read/")
    assert response.status_code == 401
    assert "allow-list" in response.json()["detail"]


def test_a_domain_entry_of_the_members_team_keeps_their_tokens_working(member, team_a):
    raw = token_for(member)
    AllowedEmail.objects.filter(pattern=member.email).delete()
    AllowedEmail.objects.create(pattern="@a.example", team=team_a)
    assert api_client(raw).get("/probe/read/").status_code == 200


def test_an_entry_for_another_team_does_not_admit_a_member(member, team_b):
    raw = token_for(member)
    AllowedEmail.objects.filter(pattern=member.email).update(team=team_b)
    assert api_client(raw).get("/probe/read/").status_code == 401


def test_last_use_is_recorded_at_most_once_a_minute(member, django_assert_max_num_queries):
    raw = token_for(member)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        api_client(raw).get("/probe/read/", REMOTE_ADDR="10.1.2.3")
        token = ApiToken.objects.get()
        assert token.last_used_at == start
        assert token.last_used_ip == "10.1.2.3"

        clock.shift(timedelta(seconds=30))
        api_client(raw).get("/probe/read/", REMOTE_ADDR="10.9.9.9")
        token.refresh_from_db()
        assert token.last_used_at == start
        assert token.last_used_ip == "10.1.2.3"

        clock.shift(timedelta(seconds=31))
        api_client(raw).get("/probe/read/", REMOTE_ADDR="10.9.9.9")
        token.refresh_from_db()
        assert token.last_used_at == start + timedelta(seconds=61)
        assert token.last_used_ip == "10.9.9.9"


def test_an_authenticated_request_costs_a_bounded_number_of_queries(
    member, django_assert_max_num_queries
):
    raw = token_for(member)
    client = api_client(raw)
    client.get("/probe/read/")  # first use writes last_used_at and last_activity_at
    with django_assert_max_num_queries(2):
        assert client.get("/probe/read/").status_code == 200


def test_a_browser_session_may_read_without_a_token(client, member):
    client.force_login(member)
    assert client.get("/probe/read/").status_code == 200


def test_a_browser_session_must_send_csrf_to_write(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    response = browser.post("/probe/read/", {}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_token_never_passes_a_session_only_permission(member, client):
    assert api_client(token_for(member)).get("/probe/session-only/").status_code == 403
    client.force_login(member)
    assert client.get("/probe/session-only/").status_code == 200


def test_a_token_cannot_create_or_revoke_tokens(member):
    raw = token_for(member)
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    created = bearer.post("/settings/tokens/", {"name": "sneaky", "scopes": ["read"]})
    assert created.status_code == 302
    assert created["Location"].startswith("/accounts/login/")
    token = ApiToken.objects.get()
    revoked = bearer.post(f"/settings/tokens/{token.public_id}/revoke/")
    assert revoked.status_code == 302
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None
