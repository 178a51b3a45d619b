"""Events of the usage app, for the work that follows them (receivers.py queues it) and for
apps above usage that must react without being imported by it (budgets)."""

from django.dispatch import Signal

# A live ingest batch was stored and committed: derive its blocks, quality flags and checks.
# Sent with batch_id.
batch_stored = Signal()

# A batch was archived for the worker (a big report answered 202): process it. Sent with
# batch_id, after the archive committed; if it is never heard, the backlog sweep processes it.
batch_waiting = Signal()

# These subscriptions' blocks no longer match their machines (a machine moved): recompute.
# Sent with subscription_ids, after the change committed.
blocks_outdated = Signal()

# Batches' derived work is done: figures of this team changed. Sent with team_id, and after
# ingest also batch_ids (the team's batches derived together), member_ids and project_ids
# (whose facts they changed) and quotas (they brought quota readings), so checks can look only
# at what moved.
usage_changed = Signal()

# An agent's ingest answer is being written and the agent asked for more than what was stored
# (`?include=…`, INGEST_INCLUDES in usage.api.ingest). Receivers return {name: JSON value} to
# add to the answer, for the names in `include` they know. Sent with user and include (a set),
# after the report committed; a receiver that fails only leaves its part out.
ingest_answer = Signal()
