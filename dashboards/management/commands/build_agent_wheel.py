"""`manage.py build_agent_wheel`: make the agent's wheel that the machines page links to.

Run by `make migrate` (so `make run` serves it at once) and, in production, after each
deploy; without it the first download builds it. Prints the wheel's path and its URL.
"""

from django.core.management.base import BaseCommand, CommandError

from dashboards.agent_wheel import AgentWheelError, ensure_wheel, wheel_url


class Command(BaseCommand):
    help = "Build the agent's wheel (pipx install <url>) from agent/ into VAR_DIR/agent-wheel/."

    def handle(self, *args, **options):
        try:
            wheel = ensure_wheel()
        except AgentWheelError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Agent wheel {wheel.path}")
        self.stdout.write(f"Install on a PC with: pipx install {wheel_url()}")
