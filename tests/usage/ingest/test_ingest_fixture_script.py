"""scripts/ingest_fixture.sh posts a fixture with curl and reads back totals equal to ccusage's."""

import json
import shutil
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command

from tests.conftest import ROOT
from tests.usage.ingest.helpers import OUTPUT

SCRIPT = ROOT / "scripts" / "ingest_fixture.sh"


def token_from_command(email: str) -> str:
    out = StringIO()
    call_command("create_api_token", email, "--name", "fixture script", stdout=out)
    return out.getvalue().strip()


def run_script(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("folder", ["output", "output-v18.0.11"])
def test_the_script_posts_a_fixture_and_reads_back_ccusages_totals(
    live_server, owner, fixtures_dir, folder
):
    token = token_from_command(owner.email)
    result = run_script("--server", live_server.url, "--token", token, str(fixtures_dir / folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the server's totals equal ccusage's" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_script_sends_hourly_blocks_too(
    live_server, owner, fixtures_dir, hourly_blocks, tmp_path
):
    for name in ("claude-daily-instances.json", "claude-session.json", "all-daily-by-agent.json"):
        shutil.copy(OUTPUT / name, tmp_path / name)
    (tmp_path / "blocks-hourly.json").write_text(json.dumps(hourly_blocks))
    token = token_from_command(owner.email)
    result = run_script("--server", live_server.url, "--token", token, str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "blocks_hourly" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_script_says_why_the_server_refused(live_server, owner, fixtures_dir):
    result = run_script("--server", live_server.url, "--token", "cct_" + "x" * 43, str(OUTPUT))
    assert result.returncode == 1
    assert "answered 401" in result.stderr


@pytest.mark.django_db
def test_the_script_explains_its_usage_without_a_folder():
    result = run_script("--token", "t")
    assert result.returncode == 1
    assert "give the folder of ccusage outputs" in result.stderr
