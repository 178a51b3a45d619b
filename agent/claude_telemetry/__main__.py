"""`python -m claude_telemetry`."""

import sys

from claude_telemetry.hooks import fast_limits_hook

# Claude Code waits for the limit hooks on every prompt: they skip the command line's imports.
code = fast_limits_hook(sys.argv[1:])
if code is not None:
    raise SystemExit(code)

from claude_telemetry.cli import main  # noqa: E402

raise SystemExit(main())
