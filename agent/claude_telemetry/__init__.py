"""claude-telemetry agent: syncs this machine's ccusage reports to a claude-telemetry server."""

__version__ = "0.1.0"
