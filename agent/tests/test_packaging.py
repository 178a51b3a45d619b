"""The agent stands alone: no Django, its own entry points, installable from the server."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from django.urls import reverse
from test_end_to_end import issue_token

from dashboards.agent_wheel import ensure_wheel
from usage.models import Machine


def test_the_agent_never_imports_django():
    code = (
        "import sys, pkgutil, importlib, claude_telemetry\n"
        "names = [m.name for m in pkgutil.iter_modules(claude_telemetry.__path__)]\n"
        "assert 'cli' in names and 'sync' in names\n"
        "for name in names:\n"
        "    if name != '__main__':\n"
        "        importlib.import_module('claude_telemetry.' + name)\n"
        "assert not [n for n in sys.modules if n.split('.')[0] == 'django'], 'django imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_the_statusline_wrapper_loads_no_network_or_terminal_library():
    code = (
        "import sys\n"
        "sys.argv = ['claude-telemetry', '--home', sys.argv[1], 'statusline-capture']\n"
        "from claude_telemetry.cli import main\n"
        "main()\n"
        "heavy = {'http', 'ssl', 'httpx', 'rich'} & {n.split('.')[0] for n in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "/nonexistent-agent-home"],
        input="{}",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_sync_path_imports_no_http_library_before_it_runs_ccusage(tmp_path):
    # http.client (which imports ssl) is imported by the sync's HTTP session, which is made
    # in a thread while ccusage runs (the request keys' thread), never by importing the
    # sync's modules; httpx is not imported at all, logging.handlers only to rotate a full
    # log file.
    code = (
        "import sys\n"
        "import claude_telemetry.cli, claude_telemetry.sync, claude_telemetry.client\n"
        "from claude_telemetry.config import Home\n"
        "from claude_telemetry.logs import setup_logging\n"
        "setup_logging(Home(__import__('pathlib').Path(sys.argv[1])))\n"
        "heavy = {'http', 'ssl', 'certifi', 'httpx', 'rich'}\n"
        "heavy &= {n.split('.')[0] for n in sys.modules}\n"
        "assert not heavy, heavy\n"
        "assert 'logging.handlers' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "agent")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_python_dash_m_and_the_version_flag_work():
    done = subprocess.run(
        [sys.executable, "-m", "claude_telemetry", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("claude-telemetry 0.1.0")


def test_commands_run_with_the_collector_on_and_the_imported_objects_set_aside(tmp_path):
    # A long-running command (mcp) must keep collecting cycles; what the imports made is
    # frozen, so no collection walks it again (launch.py).
    code = (
        "import gc, sys\n"
        "import claude_telemetry.cli as cli\n"
        "from claude_telemetry import launch\n"
        "seen = {}\n"
        "def status(home, args, ui):\n"
        "    seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())\n"
        "    return 7\n"
        "cli.COMMANDS['status'] = status\n"
        "sys.argv = ['claude-telemetry', '--home', sys.argv[1], 'status']\n"
        "code = launch.main()\n"
        "print(code, seen['enabled'], seen['frozen'] > 10000)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "agent")], capture_output=True, text=True
    )
    assert done.stdout.split() == ["7", "True", "True"], done.stderr


def test_an_unknown_command_is_a_usage_error_not_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "claude_telemetry", "fly"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_wheel_the_server_offers_installs_and_runs_from_its_url(server, tmp_path, settings):
    """`pip install <url>` of the machines page's wheel, through the live server, into a fresh
    virtual environment: the console script pipx would expose runs and connects."""
    settings.VAR_DIR = tmp_path / "var"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    url = server.url + reverse("agent_wheel", args=[ensure_wheel().filename])
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The dependencies come from this test run's environment (no network here); the agent
    # itself only from the wheel.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = venv / "bin" / "claude-telemetry"
    where = subprocess.run(
        [str(python), "-c", "import claude_telemetry; print(claude_telemetry.__file__)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv))
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("claude-telemetry 0.1.0")
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
        "CLAUDE_TELEMETRY_HOME": str(tmp_path / "agent"),
        "NO_COLOR": "1",
    }
    setup = subprocess.run(
        [str(script), "setup", "--server", server.url, "--token", issue_token(), "--name",
         "from-the-wheel", "--non-interactive", "--skip-ccusage-check"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert Machine.objects.filter(name="from-the-wheel").exists()
