"""Where the agent's process starts (the `claude-telemetry` command and `python -m
claude_telemetry`): the limit hooks first, without the command line's imports, then the CLI.

Python's cyclic garbage collector is kept away from the objects the imports create (~30k:
modules, functions, classes). Left alone, it walks them in every full collection while the
imports run, again during a sync that parses reports, and once more as the process exits:
15-25 ms of a 200 ms sync (`make bench`). They live until the exit anyway, so they are
moved out of its sight (gc.freeze) instead.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    """Run the agent's command line on sys.argv; returns the exit code."""
    gc.disable()
    try:
        from claude_telemetry.hooks import fast_limits_hook

        # Claude Code waits for the limit hooks on every prompt.
        code = fast_limits_hook(sys.argv[1:])
        if code is not None:
            return code
        from claude_telemetry.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    try:
        return cli_main()
    finally:
        # What the command made is freed by reference counting as the process exits; the
        # collection at the exit then has nothing left to walk.
        gc.freeze()
