"""Claude Code's own OpenTelemetry export (OTLP/HTTP): decode it, map its events to facts."""
