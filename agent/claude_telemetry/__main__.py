"""`python -m claude_telemetry`."""

from claude_telemetry.cli import main

raise SystemExit(main())
