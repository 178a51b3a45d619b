"""The agent served by the server: its wheel at /agent/<file>, and the machines page's token
button that fills the setup command in."""

import hashlib
import io
import zipfile
from base64 import urlsafe_b64encode

import pytest
from django.urls import reverse

from accounts.models import ApiToken, hash_token
from dashboards.agent_wheel import build_bytes, ensure_wheel
from tests.conftest import ROOT, login

pytestmark = pytest.mark.django_db

WHEEL = "claude_telemetry-0.1.0-py3-none-any.whl"


@pytest.fixture(autouse=True)
def own_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def wheel_members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


@pytest.mark.parametrize("who", [None, "member", "outsider"])
def test_anyone_downloads_the_agent_wheel_without_logging_in(cast, who):
    response = login(cast[who] if who else None).get(f"/agent/{WHEEL}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{WHEEL}"'
    files = wheel_members(b"".join(response.streaming_content))
    # The package as it is in agent/, byte for byte.
    for name in ("cli.py", "sync.py", "ccusage.py", "__main__.py"):
        path = ROOT / "agent" / "claude_telemetry" / name
        assert files[f"claude_telemetry/{name}"] == path.read_bytes()
    info = "claude_telemetry-0.1.0.dist-info"
    metadata = files[f"{info}/METADATA"].decode()
    assert "Name: claude-telemetry\nVersion: 0.1.0\n" in metadata
    assert "Requires-Python: >=3.11" in metadata and "Requires-Dist: certifi" in metadata
    # pipx installs a package for its console scripts: the entry point must be there.
    assert files[f"{info}/entry_points.txt"] == (
        b"[console_scripts]\nclaude-telemetry = claude_telemetry.launch:main\n"
    )
    assert b"Tag: py3-none-any" in files[f"{info}/WHEEL"]


def test_the_wheels_record_lists_every_file_with_its_hash():
    """What pip checks on install (the wheel format's RECORD)."""
    _, _, content = build_bytes()
    files = wheel_members(content)
    rows = [
        line.split(",")
        for line in files.pop("claude_telemetry-0.1.0.dist-info/RECORD").decode().splitlines()
    ]
    recorded = {path: (digest, size) for path, digest, size in rows}
    assert recorded.pop("claude_telemetry-0.1.0.dist-info/RECORD") == ("", "")
    assert set(recorded) == set(files)
    for path, data in files.items():
        digest = urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert recorded[path] == (f"sha256={digest}", str(len(data)))
    assert not [p for p in files if "__pycache__" in p or p.startswith("tests/")]


def test_the_same_sources_give_the_same_bytes_and_the_wheel_is_built_once():
    first = ensure_wheel()
    made = first.path.stat().st_mtime_ns
    assert ensure_wheel().path.stat().st_mtime_ns == made
    assert first.path.read_bytes() == build_bytes()[2]


def test_another_file_name_is_not_found_and_only_reading_is_allowed(member):
    assert login(None).get("/agent/claude_telemetry-0.0.1-py3-none-any.whl").status_code == 404
    assert login(member).post(f"/agent/{WHEEL}").status_code == 405


def test_a_member_makes_a_token_and_the_setup_command_carries_it(member, outsider, settings):
    settings.SITE_URL = "https://telemetry.example.com"
    response = login(member).post(reverse("machine_token"))
    assert response.status_code == 201
    token = ApiToken.objects.get(user=member)
    assert token.scopes == ["ingest"]
    html = response.content.decode()
    start = html.index("claude-telemetry setup --server https://telemetry.example.com --token ")
    raw = html[start:].split("--token ", 1)[1].split("<", 1)[0].strip()
    assert hash_token(raw) == token.token_hash
    assert f"pipx install https://telemetry.example.com/agent/{WHEEL}" in html
    # Shown once: the page after it has the button again, not the token.
    again = login(member).get(reverse("machines")).content.decode()
    assert raw not in again and "Create a token for a new machine" in again
    assert not ApiToken.objects.filter(user=outsider).exists()


def test_a_token_made_for_a_named_machine_carries_its_name(member):
    response = login(member).post(reverse("machine_token"), {"machine": "  Work laptop "})
    assert response.status_code == 201
    token = ApiToken.objects.get(user=member)
    assert token.name == "Machine set-up: Work laptop"
    html = response.content.decode()
    command = html[html.index("claude-telemetry setup --server") :].split("</code>", 1)[0]
    assert command.endswith("--name=&#x27;Work laptop&#x27;")
    tokens_page = login(member).get(reverse("tokens")).content.decode()
    assert "Machine set-up: Work laptop" in tokens_page


def test_a_long_or_dashed_machine_name_still_makes_a_working_command(member):
    long_name = "x" * 100
    response = login(member).post(reverse("machine_token"), {"machine": long_name})
    assert response.status_code == 201
    assert ApiToken.objects.get(user=member).name == long_name
    response = login(member).post(reverse("machine_token"), {"machine": "-x"})
    html = response.content.decode()
    command = html[html.index("claude-telemetry setup --server") :].split("</code>", 1)[0]
    # "--name=-x", not "--name -x": argparse would read "-x" as an option.
    assert command.endswith(" --name=-x")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("x" * 101, "1 to 100 characters"), ("pc\u202eexe", "invisible formatting")],
)
def test_a_name_no_machine_could_take_makes_no_token(member, name, reason):
    response = login(member).post(reverse("machine_token"), {"machine": name})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not ApiToken.objects.exists()


def test_making_a_token_needs_a_login_and_a_post(member):
    response = login(None).post(reverse("machine_token"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert login(member).get(reverse("machine_token")).status_code == 405
    assert not ApiToken.objects.exists()
