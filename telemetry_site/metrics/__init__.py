"""The Prometheus exposition at /metrics (docs/metrics.md): a team's usage figures and, for the
deployment's operator, the server's own health, read from the database at scrape time."""
