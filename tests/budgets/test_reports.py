"""Scheduled reports: the weekly digest and the monthly chargeback report, exactly once per
team and period in the team's timezone, to admins and opted-in members by email (HTML, text,
CSV) and to chat channels; opt-out by a one-click link; the admins' preview page."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import Team
from budgets.models import Channel, Delivery, Report, ReportKind, ReportSetting
from budgets.reports import schedule
from budgets.reports.unsubscribe import make_token
from tests.budgets.chat_shapes import PROBLEMS, all_text
from tests.budgets.conftest import spend
from tests.factories import (
    SubscriptionFactory,
    chat_channel,
    machine_for,
    make_budget,
    project_for,
    rate_limit,
)

pytestmark = pytest.mark.django_db

# Monday 23 November 2026, 07:05 UTC: team A (UTC) is due its digest for Nov 16-22.
MONDAY = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
Status = Delivery.Status


@pytest.fixture
def at_monday():
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


@pytest.fixture
def week(team_a, owner, admin, member, at_monday):
    """Team A's last two weeks: $60 in Nov 16-22 against $50 in Nov 9-15."""
    Team.objects.filter(pk=team_a.pk).update(created_at=datetime(2026, 9, 1, tzinfo=UTC))
    team_a.refresh_from_db()
    api = project_for(team_a, "-src-api", display_name="api-server")
    web = project_for(team_a, "-src-web", display_name="web-app")
    laptop = machine_for(member, name="laptop")
    desk = machine_for(admin, name="desk")
    spend(laptop, date(2026, 11, 17), "40", project=api, model="claude-opus-4-1-20250805")
    spend(desk, date(2026, 11, 18), "20", project=web, model="claude-sonnet-4-5-20250929")
    spend(laptop, date(2026, 11, 10), "30", project=api)
    spend(desk, date(2026, 11, 11), "20", project=web)
    return {"api": api, "web": web, "laptop": laptop, "desk": desk}


def send_due(django_capture_on_commit_callbacks, now=MONDAY) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return schedule.send_due_reports(now)


def digests() -> list:
    return [m for m in mail.outbox if "weekly digest" in m.subject]


def test_the_weekly_digest_reaches_admins_with_last_weeks_figures(
    week, owner, admin, member, django_capture_on_commit_callbacks
):
    send_due(django_capture_on_commit_callbacks)
    report = Report.objects.get(kind=ReportKind.WEEKLY_DIGEST)
    assert (report.period_start, report.period_end) == (date(2026, 11, 16), date(2026, 11, 22))
    sent = digests()
    assert sorted(m.to[0] for m in sent) == [admin.email, owner.email]  # members opt in
    message = sent[0]
    assert message.subject == "Team A weekly digest, Nov 16\N{EN DASH}22, 2026: $60.00"
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    for text in (message.body, html):
        assert "$60.00" in text and "$50.00" in text
        assert "+20.0% vs the week before" in text  # (60 - 50) / 50
        assert "api-server" in text and "web-app" in text
        assert "Claude Opus 4.1" in text  # friendly model names
        assert "member" in text  # top members by name
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")
    assert Delivery.objects.filter(status=Status.SENT).count() == 4  # and October's report


def test_unusual_days_quiet_machines_budgets_and_quota_headroom(
    week, team_a, member, django_capture_on_commit_callbacks
):
    # Silent since Thursday 19th: more than 48 h before the week ended.
    week["laptop"].last_seen_at = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    week["laptop"].save()
    week["desk"].last_seen_at = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    week["desk"].save()
    make_budget(team_a, "100", name="Team cap")
    subscription = SubscriptionFactory(owner=member, label="Member Max")
    rate_limit(subscription, week["laptop"], MONDAY - timedelta(minutes=30), seven_day=82.0)
    # $5 a day from Oct 20 to Nov 8: with Nov 10 ($30), Nov 11 ($20) and six empty days, the
    # median of the 28 days before the week (Oct 19 to Nov 15) is $5.
    for offset in range(20):
        spend(week["desk"], date(2026, 10, 20) + timedelta(days=offset), "5", project=week["api"])
    send_due(django_capture_on_commit_callbacks)
    data = Report.objects.get(kind=ReportKind.WEEKLY_DIGEST).data
    # Unusual: at least twice $5 and at least $10 above it.
    assert [(d["day"], d["spent_usd"], d["typical_usd"]) for d in data["unusual_days"]] == [
        ("2026-11-17", "40.00", "5.00"),
        ("2026-11-18", "20.00", "5.00"),
    ]
    assert [m["name"] for m in data["quiet_machines"]] == ["laptop"]
    (budget,) = data["budgets"]
    # November so far: 40 + 20 + 30 + 20 and eight days of $5.
    assert (budget["name"], budget["spent_usd"], budget["percent"]) == (
        "Team cap",
        "150.00",
        150.0,
    )
    weekly = [q for q in data["quotas"] if q["window"] == "seven_day"]
    assert [(q["subscription"], q["used_percent"]) for q in weekly] == [("Member Max", 82.0)]
    html = digests()[0].alternatives[0][0]
    assert "82%" in html and "18%" in html  # used, and the headroom: 100 - 82


def test_a_team_with_under_seven_spending_days_before_the_week_has_no_unusual_days(
    week, django_capture_on_commit_callbacks
):
    send_due(django_capture_on_commit_callbacks)  # two days of spend before the week
    assert Report.objects.get(kind=ReportKind.WEEKLY_DIGEST).data["unusual_days"] == []


def test_repeated_beat_runs_send_each_report_once(
    week, at_monday, django_capture_on_commit_callbacks
):
    assert send_due(django_capture_on_commit_callbacks) == 2  # the digest and October's report
    first = len(mail.outbox)
    for hours in (0, 1, 5, 30):
        at_monday.move_to(MONDAY + timedelta(hours=hours))
        assert send_due(django_capture_on_commit_callbacks, MONDAY + timedelta(hours=hours)) == 0
    assert len(mail.outbox) == first
    assert Report.objects.count() == 2


def test_the_period_starts_at_the_teams_send_hour_in_its_timezone(
    week, team_a, django_capture_on_commit_callbacks
):
    # Auckland is UTC+13 in November: Monday 07:00 there is Sunday 18:00 UTC.
    Team.objects.filter(pk=team_a.pk).update(timezone="Pacific/Auckland")
    team_a.refresh_from_db()
    before = datetime(2026, 11, 22, 17, 59, tzinfo=UTC)
    at = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert ("weekly_digest", date(2026, 11, 9), date(2026, 11, 15)) in schedule.due_periods(
        team_a, before
    )
    assert ("weekly_digest", date(2026, 11, 16), date(2026, 11, 22)) in schedule.due_periods(
        team_a, at
    )
    utc_team = Team(timezone="UTC", created_at=team_a.created_at)
    # The same instant is still Sunday evening in UTC: no new week there yet.
    assert ("weekly_digest", date(2026, 11, 9), date(2026, 11, 15)) in schedule.due_periods(
        utc_team, at
    )


def test_month_and_week_boundaries_follow_team_days():
    assert schedule.last_week(date(2026, 11, 23)) == (date(2026, 11, 16), date(2026, 11, 22))
    assert schedule.last_week(date(2026, 11, 29)) == (date(2026, 11, 16), date(2026, 11, 22))
    assert schedule.last_month(date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert schedule.last_month(date(2026, 3, 1)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert schedule.last_month(date(2027, 1, 15)) == (date(2026, 12, 1), date(2026, 12, 31))


def test_a_team_made_after_the_period_gets_no_report_for_it(team_a):
    Team.objects.filter(pk=team_a.pk).update(created_at=datetime(2026, 11, 20, tzinfo=UTC))
    team_a.refresh_from_db()
    kinds = {kind for kind, *_ in schedule.due_periods(team_a, MONDAY)}
    assert kinds == {"weekly_digest"}  # the week of the 16th, not October


def test_members_opt_in_and_see_only_their_own_rows_when_the_team_hides_others(
    week, client, member, admin, django_capture_on_commit_callbacks
):
    client.force_login(member)
    response = client.get(reverse("budgets"))
    page = response.content.decode()
    assert "Email me the weekly digest" in page
    assert "monthly chargeback" not in page  # it names everyone
    form = response.context["settings_form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not False}
    assert data.pop("weekly_digest", None) is None  # off until they opt in
    response = client.post(reverse("alert_settings"), {**data, "weekly_digest": "on"})
    assert response.status_code == 302
    send_due(django_capture_on_commit_callbacks)
    (mine,) = [m for m in digests() if m.to == [member.email]]
    html = mine.alternatives[0][0]
    assert "$60.00" in html  # the team's total
    assert "your own figures" in html
    assert admin.display_name not in mine.body and "desk" not in mine.body
    admins = next(m for m in digests() if m.to == [admin.email])
    assert admin.display_name in admins.body  # admins see the whole team
    assert not [m for m in mail.outbox if "chargeback" in m.subject and m.to == [member.email]]


def test_a_one_click_unsubscribe_stops_the_next_digest(
    week, client, admin, at_monday, django_capture_on_commit_callbacks
):
    send_due(django_capture_on_commit_callbacks)
    (message,) = [m for m in digests() if m.to == [admin.email]]
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    path = link.split("://", 1)[1].split("/", 1)[1]
    # Opening the link asks first (mail scanners follow links); nothing changes yet.
    page = client.get("/" + path)
    assert page.status_code == 200 and b"Unsubscribe from the weekly digest?" in page.content
    assert not ReportSetting.objects.filter(user=admin).exists()
    # The mail client's one-click POST (RFC 8058): no session, no CSRF token.
    response = client.post("/" + path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert ReportSetting.objects.get(user=admin).weekly_digest is False
    mail.outbox.clear()
    next_monday = MONDAY + timedelta(days=7)
    at_monday.move_to(next_monday)
    send_due(django_capture_on_commit_callbacks, next_monday)
    assert [m.to for m in digests()] and [admin.email] not in [m.to for m in digests()]


@pytest.mark.parametrize("token", ["nonsense", make_token(1, "weekly_digest") + "x"])
def test_a_bad_unsubscribe_token_changes_nothing(client, admin, token):
    assert client.post(reverse("report_unsubscribe", args=[token])).status_code == 404
    assert not ReportSetting.objects.exists()


def test_the_monthly_chargeback_has_names_and_a_formula_safe_csv(
    team_a, owner, admin, member, django_capture_on_commit_callbacks
):
    Team.objects.filter(pk=team_a.pk).update(created_at=datetime(2026, 9, 1, tzinfo=UTC))
    team_a.refresh_from_db()
    api = project_for(team_a, "-src-api", display_name="api-server")
    evil = project_for(team_a, "-src-evil", display_name='=HYPERLINK("http://x")')
    spend(machine_for(member), date(2026, 11, 3), "12.5", project=api)
    spend(machine_for(member, name="pc2"), date(2026, 11, 30), "2.25", project=evil)
    spend(machine_for(admin, name="desk"), date(2026, 11, 15), "7", project=api)
    spend(machine_for(admin, name="desk"), date(2026, 12, 1), "99", project=api)  # December
    first = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    with time_machine.travel(first, tick=False):
        send_due(django_capture_on_commit_callbacks, first)
    report = Report.objects.get(kind=ReportKind.MONTHLY_CHARGEBACK)
    assert report.data["total_usd"] == "21.75"  # 12.5 + 2.25 + 7
    messages = [m for m in mail.outbox if "chargeback" in m.subject]
    assert sorted(m.to[0] for m in messages) == [admin.email, owner.email]
    message = messages[0]
    assert message.subject == "Team A chargeback report, November 2026: $21.75"
    ((name, content, mimetype),) = message.attachments
    assert (name, mimetype) == ("chargeback-team-a-2026-11.csv", "text/csv")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0] == [
        "period_start",
        "period_end",
        "project",
        "member",
        "email",
        "cost_usd",
        "tokens",
    ]
    body = {(r[2], r[3]): r[5] for r in rows[1:]}
    assert body == {
        ('\'=HYPERLINK("http://x")', "member"): "2.25",
        ("api-server", "member"): "12.50",
        ("api-server", "admin"): "7.00",
    }
    assert all(r[:2] == ["2026-11-01", "2026-11-30"] for r in rows[1:])


@pytest.mark.parametrize("kind", ["slack", "discord", "teams"])
def test_reports_go_to_chat_channels_that_ask_for_them(
    kind, week, team_a, chat_receiver, django_capture_on_commit_callbacks
):
    chat_channel(team_a, kind, chat_receiver.url(), weekly_digest=True)
    chat_channel(team_a, kind, chat_receiver.url("/other"), name="alerts only")
    send_due(django_capture_on_commit_callbacks)
    (body,) = chat_receiver.bodies
    assert PROBLEMS[kind](body) == []
    text = all_text(body)
    assert "Team A weekly digest, Nov 16\N{EN DASH}22, 2026: $60.00" in text
    assert "+20.0% vs the week before" in text
    assert "api-server: $40.00" in text


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("member", 403)])
def test_only_admins_open_the_reports_page_and_preview(role, status, client, cast, week):
    client.force_login(cast[role])
    for name in ("reports", "report_preview"):
        assert client.get(reverse(name)).status_code == status
        assert client.get(reverse(name) + "?kind=monthly").status_code == status


def test_the_preview_is_this_weeks_digest_as_the_email(client, admin, week, team_a):
    spend(week["laptop"], date(2026, 11, 23), "3.5", project=week["api"])  # today, Monday
    client.force_login(admin)
    page = client.get(reverse("reports")).content.decode()
    assert 'src="/budgets/reports/preview/?kind=weekly"' in page
    preview = client.get(reverse("report_preview"))
    html = preview.content.decode()
    assert "Weekly digest · Team A" in html and "$3.50" in html and "Nov 23" in html
    assert "'unsafe-inline'" in preview["Content-Security-Policy"]
    assert preview["X-Frame-Options"] == "SAMEORIGIN"
    assert Report.objects.count() == 0  # previewing sends and stores nothing


def test_an_outsider_previews_only_their_own_team(client, outsider, week):
    client.force_login(outsider)
    html = client.get(reverse("report_preview")).content.decode()
    assert "Team B" in html and "api-server" not in html and "$60.00" not in html


def test_the_chargeback_csv_download_is_for_the_teams_admins_only(
    client, cast, team_a, django_capture_on_commit_callbacks
):
    Team.objects.filter(pk=team_a.pk).update(created_at=datetime(2026, 9, 1, tzinfo=UTC))
    team_a.refresh_from_db()
    report = schedule.make_report(
        team_a, ReportKind.MONTHLY_CHARGEBACK, date(2026, 10, 1), date(2026, 10, 31)
    )
    url = reverse("report_csv", args=[report.public_id])
    expected = {"owner": 200, "admin": 200, "member": 403, "outsider": 404}
    for role, status in expected.items():
        client.force_login(cast[role])
        assert client.get(url).status_code == status, role


def test_anonymous_visitors_are_sent_to_log_in(client):
    for name in ("reports", "report_preview"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]


def test_a_digest_goes_through_a_real_smtp_server(
    week, owner, admin, smtp_server, django_capture_on_commit_callbacks
):
    send_due(django_capture_on_commit_callbacks)
    digests_ = [m for m in smtp_server.messages if "weekly digest" in str(m["Subject"])]
    assert len(digests_) == 2
    message = digests_[0]
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    chargebacks = [m for m in smtp_server.messages if "chargeback" in str(m["Subject"])]
    assert chargebacks and chargebacks[0].get_content_type() == "multipart/mixed"
    attachment = next(chargebacks[0].iter_attachments())
    assert attachment.get_filename() == "chargeback-team-a-2026-10.csv"


def test_members_who_see_each_other_may_opt_in_to_the_whole_chargeback(
    week, team_a, client, member, at_monday, django_capture_on_commit_callbacks
):
    Team.objects.filter(pk=team_a.pk).update(members_see_each_other=True)
    spend(week["desk"], date(2026, 10, 20), "5", project=week["web"])  # the admin, in October
    client.force_login(member)
    page = client.get(reverse("budgets")).content.decode()
    assert "Email me the monthly chargeback report" in page
    ReportSetting.objects.create(user=member, monthly_report=True)
    send_due(django_capture_on_commit_callbacks)
    (mine,) = [m for m in mail.outbox if "chargeback" in m.subject and m.to == [member.email]]
    ((_, content, _),) = mine.attachments
    rows = list(csv.reader(io.StringIO(content)))[1:]
    assert [(r[2], r[3], r[5]) for r in rows] == [("web-app", "admin", "5.00")]


def test_an_admin_on_an_email_channel_with_reports_gets_the_digest_once(
    week, team_a, owner, admin, django_capture_on_commit_callbacks
):
    channel = Channel.objects.create(
        team=team_a,
        name="Leads",
        kind=Channel.Kind.EMAIL,
        addresses=[owner.email.upper(), "finance@example.com"],
        weekly_digest=True,
    )
    channel.members.add(admin)
    send_due(django_capture_on_commit_callbacks)
    received = sorted(address.lower() for m in digests() for address in m.to)
    assert received == sorted([admin.email, owner.email, "finance@example.com"])
