"""Events of the budgets app: deliveries that are ready to send (receivers.py queues them)."""

from django.dispatch import Signal

# These deliveries are pending and committed: send them. Sent with delivery_ids.
deliveries_ready = Signal()
