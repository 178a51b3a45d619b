"""Connects the OTLP supersede rule to committed agent batches."""

from usage import signals
from usage.ingest.otlp.logs import supersede_after_agent

signals.batch_stored.connect(supersede_after_agent, dispatch_uid="otlp_supersede_after_agent")
