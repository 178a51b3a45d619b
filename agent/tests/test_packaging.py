"""The agent stands alone: no Django, its own entry points."""

import subprocess
import sys


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
        "heavy = {'httpx', 'rich'} & {n.split('.')[0] for n in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "/nonexistent-agent-home"],
        input="{}",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_python_dash_m_and_the_version_flag_work():
    done = subprocess.run(
        [sys.executable, "-m", "claude_telemetry", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("claude-telemetry 0.1.0")


def test_an_unknown_command_is_a_usage_error_not_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "claude_telemetry", "fly"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert "Traceback" not in done.stderr
