"""`claude-telemetry setup` as a person runs it: the real CLI in a subprocess, answering its
prompts on stdin, against a live server. Each answer is checked when it is given; the privacy
and plan questions are asked once; `setup --token` alone replaces the token."""

import tomllib
from pathlib import Path

import pytest
from test_end_to_end import issue_token

from accounts.models import ApiToken
from usage.models import Machine, Plan, Subscription

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def config(agent_env) -> dict:
    path = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml"
    return tomllib.loads(path.read_text())


def answers(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_a_wrong_answer_is_asked_again_at_once_not_after_every_prompt(server, cli, agent_env):
    token = issue_token()
    done = cli(
        "setup",
        "--skip-ccusage-check",
        stdin=answers(
            "http://127.0.0.1:9",  # nothing listens there
            f"{server.url}/api/v1",  # a JSON answer, but not a claude-telemetry server
            server.url,
            "hello",  # not a token
            "cct_" + "x" * 43,  # well-formed, unknown to the server
            token,
            "",  # the default machine name
            "3",  # hashed project names
            "6",  # the plan: skip
            "n",  # no background service now
            "n",  # no status line capture
        ),
    )
    assert done.code == 0, done.output
    assert "Cannot reach http://127.0.0.1:9" in done.output
    assert "is not a claude-telemetry server" in done.output
    assert "That is not an API token" in done.output
    assert "does not accept this token" in done.output
    # The server was asked for three times and the token three times; nothing else twice.
    assert done.stdout.count("Server URL") == 3
    assert done.stdout.count("API token") == 3
    assert done.stdout.count("Name for this machine") == 1
    saved = config(agent_env)
    assert saved["server"]["url"] == server.url
    assert saved["privacy"] == {**saved["privacy"], "hash_project_names": True, "chosen": True}
    assert saved["privacy"]["send_project_paths"] is False
    assert Machine.objects.filter(uuid=saved["machine"]["uuid"]).exists()


def test_input_that_ends_before_the_questions_do_says_how_to_answer_them(server, cli):
    done = cli("setup", "--skip-ccusage-check", stdin=answers(server.url))
    assert done.code == 2, done.output
    assert "its input ended" in done.stderr and "--non-interactive" in done.stderr
    assert "Traceback" not in done.output and "EOFError" not in done.output


def test_the_privacy_question_is_asked_once(server, cli, agent_env):
    token = issue_token()
    first = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "2", "6", "n", "n"),
    )  # fmt: skip
    assert first.code == 0, first.output
    assert "What may the server learn about your projects?" in first.stdout
    assert "only each project folder's last part" in first.stdout
    again = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "n", "n"),
    )  # fmt: skip
    assert again.code == 0, again.output
    assert "What may the server learn" not in again.stdout
    privacy = config(agent_env)["privacy"]
    assert privacy["send_project_paths"] is False and privacy["hash_project_names"] is False


def test_setup_with_only_a_token_replaces_it_and_keeps_server_and_machine(server, cli, agent_env):
    old = issue_token()
    done = cli(
        "setup", "--server", server.url, "--token", old, "--name", "laptop",
        "--non-interactive", "--skip-ccusage-check",
    )  # fmt: skip
    assert done.code == 0, done.output
    before = config(agent_env)
    ApiToken.objects.update(revoked_at="2026-11-01T00:00:00Z")
    new = issue_token()

    done = cli("setup", "--token", new)

    assert done.code == 0, done.output
    assert "Token replaced" in done.stdout
    assert config(agent_env) == before  # same server, machine id, name and privacy
    token_file = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "token"
    assert token_file.read_text().strip() == new
    assert cli("sync").code == 0


def test_a_refused_token_alone_changes_nothing(server, cli, agent_env):
    good = issue_token()
    assert cli(
        "setup", "--server", server.url, "--token", good, "--name", "laptop",
        "--non-interactive", "--skip-ccusage-check",
    ).code == 0  # fmt: skip
    done = cli("setup", "--token", "cct_" + "y" * 43)
    assert done.code == 1 and "Nothing was saved" in done.output
    token_file = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "token"
    assert token_file.read_text().strip() == good


def test_scripts_choose_the_privacy_with_a_flag(server, cli, agent_env):
    done = cli(
        "setup", "--server", server.url, "--token", issue_token(), "--name", "ci-box",
        "--privacy", "hashed", "--non-interactive", "--skip-ccusage-check",
    )  # fmt: skip
    assert done.code == 0, done.output
    assert "hashed names only" in done.stdout
    privacy = config(agent_env)["privacy"]
    assert privacy["hash_project_names"] is True and privacy["chosen"] is True


def account_plan(agent_env) -> str:
    machine = Machine.objects.get(uuid=config(agent_env)["machine"]["uuid"])
    return Subscription.objects.get(pk=machine.subscription_id).plan


def test_setup_asks_once_for_a_plan_nobody_chose(server, cli, agent_env):
    token = issue_token()
    first = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "1", "3", "n", "n"),  # the plan: 3. Max 20x
    )  # fmt: skip
    assert first.code == 0, first.output
    assert "Which plan pays for this Claude account?" in first.stdout
    assert "5. API pay-as-you-go" in first.stdout and "6. skip" in first.stdout
    assert "Plan: Max 20x." in first.stdout
    assert account_plan(agent_env) == Plan.MAX20X
    again = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "n", "n"),
    )  # fmt: skip
    assert again.code == 0, again.output
    assert "Which plan pays" not in again.stdout and "Plan: Max 20x." in again.stdout


def test_a_skipped_plan_stays_unknown_and_is_not_asked_again(server, cli, agent_env):
    token = issue_token()
    first = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "1", "6", "n", "n"),
    )  # fmt: skip
    assert first.code == 0, first.output
    assert f"choose it on {server.url}/settings/subscriptions/" in first.stdout
    assert account_plan(agent_env) == Plan.UNKNOWN
    again = cli(
        "setup", "--server", server.url, "--token", token, "--skip-ccusage-check",
        stdin=answers("laptop", "n", "n"),
    )  # fmt: skip
    assert again.code == 0, again.output
    assert "Which plan pays" not in again.stdout
    assert account_plan(agent_env) == Plan.UNKNOWN


def test_scripts_give_the_plan_with_a_flag_and_never_overwrite_a_chosen_one(server, cli, agent_env):
    token = issue_token()
    done = cli(
        "setup", "--server", server.url, "--token", token, "--name", "ci-box",
        "--plan", "pro", "--non-interactive", "--skip-ccusage-check",
    )  # fmt: skip
    assert done.code == 0, done.output
    assert "Plan: Pro." in done.stdout
    assert account_plan(agent_env) == Plan.PRO
    # Someone changes it on the web page; a script's later --plan does not undo that.
    machine = Machine.objects.get(uuid=config(agent_env)["machine"]["uuid"])
    Subscription.objects.filter(pk=machine.subscription_id).update(plan=Plan.TEAM)
    done = cli(
        "setup", "--server", server.url, "--token", token, "--name", "ci-box",
        "--plan", "max5x", "--non-interactive", "--skip-ccusage-check",
    )  # fmt: skip
    assert done.code == 0, done.output
    assert "The plan is already Team; it is not changed here." in done.output
    assert account_plan(agent_env) == Plan.TEAM


def test_a_non_interactive_setup_without_a_plan_says_where_to_choose_it(server, cli, agent_env):
    done = cli(
        "setup", "--server", server.url, "--token", issue_token(), "--name", "ci-box",
        "--non-interactive", "--skip-ccusage-check",
    )  # fmt: skip
    assert done.code == 0, done.output
    assert "Plan unknown: choose it on" in done.stdout and "--plan" in done.stdout
    assert account_plan(agent_env) == Plan.UNKNOWN
