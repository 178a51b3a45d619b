"""A PC where Claude Code is installed but has no session yet, or has no logs folder at all:
the real agent and the real ccusage against a live server. An empty report is a valid report:
the sync succeeds, the machine is seen, nothing is stored."""

import shutil
from pathlib import Path

import pytest
from test_end_to_end import issue_token

from usage.models import DailyUsage, IngestBatch, Machine

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def token(server):
    return issue_token()


def empty_pc(agent_env, *, keep_projects_folder: bool) -> None:
    """The fixture PC with every log removed; Claude's projects/ kept empty, or gone (and
    CLAUDE_CONFIG_DIR unset, as on a PC that never ran Claude Code). Changes `agent_env`,
    which the `cli` fixture runs with."""
    home = Path(agent_env["HOME"])
    for folder in (home / ".claude", home / ".config" / "claude", home / ".codex"):
        shutil.rmtree(folder, ignore_errors=True)
    if keep_projects_folder:
        (home / ".claude" / "projects").mkdir(parents=True)
        agent_env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    else:
        del agent_env["CLAUDE_CONFIG_DIR"]


@pytest.mark.parametrize("keep_projects_folder", [True, False], ids=["empty", "no-folder"])
def test_a_pc_with_no_usage_yet_syncs_and_is_seen(
    server, token, cli, agent_env, keep_projects_folder
):
    empty_pc(agent_env, keep_projects_folder=keep_projects_folder)
    done = cli(
        "setup",
        "--server",
        server.url,
        "--token",
        token,
        "--name",
        "new-pc",
        "--non-interactive",
    )
    assert done.code == 0, done.output

    done = cli("sync")

    assert done.code == 0, done.output
    machine = Machine.objects.get(name="new-pc")
    assert machine.last_seen_at is not None and machine.last_sync_status == "ok"
    assert not DailyUsage.objects.filter(machine=machine).exists()
    batches = IngestBatch.objects.filter(machine=machine)
    assert batches.exists() and not batches.exclude(status="processed").exists()
    # A second sync of the same nothing changes nothing either.
    assert cli("sync").code == 0
    assert not DailyUsage.objects.filter(machine=machine).exists()
