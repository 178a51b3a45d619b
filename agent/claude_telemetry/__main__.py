"""`python -m claude_telemetry`."""

from claude_telemetry.launch import main

raise SystemExit(main())
