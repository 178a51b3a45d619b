"""Command line of the agent."""

import argparse

from claude_telemetry import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="claude-telemetry")
    parser.add_argument("--version", action="version", version=__version__)
    parser.parse_args(argv)
    return 0
