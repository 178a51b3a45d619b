"""The agent's log file: appended to by every command, rotated by the one that finds it full."""

import logging

import pytest
from claude_telemetry import logs
from claude_telemetry.config import Home


@pytest.fixture
def fresh_logger():
    logger = logging.getLogger("claude_telemetry")
    kept = list(logger.handlers)
    for handler in kept:
        logger.removeHandler(handler)
    yield logger
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    for handler in kept:
        logger.addHandler(handler)


def run_command(home: Home, message: str) -> None:
    """What each command does: set the log up, write, end (the handler closed)."""
    logs.setup_logging(home)
    logger = logging.getLogger("claude_telemetry")
    logging.getLogger("claude_telemetry.sync").info(message)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


@pytest.fixture
def small_logs(tmp_path, fresh_logger, monkeypatch) -> Home:
    """An agent home whose log file is full at 200 bytes, with two old files kept."""
    monkeypatch.setattr(logs, "MAX_BYTES", 200)
    monkeypatch.setattr(logs, "BACKUPS", 2)
    return Home(tmp_path / "agent")


def test_commands_append_and_the_one_finding_the_file_full_rotates_it(small_logs):
    home = small_logs
    folder = home.logs_dir
    for n in range(4):
        run_command(home, f"command {n} " + "x" * 60)
    # 4 lines of ~120 bytes: the third command found 240 bytes and rotated them away.
    assert "command 2" in (folder / "agent.log").read_text()
    assert "command 0" in (folder / "agent.log.1").read_text()
    assert "command 1" in (folder / "agent.log.1").read_text()
    for n in range(4, 12):
        run_command(home, f"command {n} " + "x" * 60)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["agent.log", "agent.log.1", "agent.log.2"]  # BACKUPS old files at most
    assert all(p.stat().st_size < 400 for p in folder.iterdir())


def test_an_unwritable_home_leaves_the_command_without_a_log_file(tmp_path, fresh_logger):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    logs.setup_logging(Home(blocked))
    assert not [h for h in fresh_logger.handlers if isinstance(h, logging.FileHandler)]


def test_a_file_that_cannot_be_rotated_is_still_appended_to_with_a_warning(small_logs):
    home = small_logs
    folder = home.logs_dir
    folder.mkdir(parents=True)
    (folder / "agent.log").write_text("x" * 300 + "\n")
    (folder / "agent.log.1").write_text("older\n")
    (folder / "agent.log.2").mkdir()  # in the way of agent.log.1
    run_command(home, "this sync")
    text = (folder / "agent.log").read_text()
    assert text.startswith("x" * 300)
    assert "could not be rotated" in text and "this sync" in text
