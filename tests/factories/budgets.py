"""Alert channels and budgets."""

from decimal import Decimal

import factory

from budgets.models import Budget, Channel
from tests.factories.accounts import TeamFactory


class ChannelFactory(factory.django.DjangoModelFactory):
    """An email channel to one address; the `webhook` trait makes a signed-webhook channel."""

    class Meta:
        model = Channel
        skip_postgeneration_save = True

    class Params:
        webhook = factory.Trait(
            kind=Channel.Kind.WEBHOOK,
            name="Chat hook",
            addresses=factory.LazyFunction(list),
            url="http://127.0.0.1:9/hooks/alerts",
        )

    team = factory.SubFactory(TeamFactory)
    name = "Team mail"
    kind = Channel.Kind.EMAIL
    addresses = factory.LazyFunction(lambda: ["alerts@a.example"])

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            self.members.set(extracted)


class BudgetFactory(factory.django.DjangoModelFactory):
    """A monthly team budget of $500 named "API server"."""

    class Meta:
        model = Budget
        skip_postgeneration_save = True

    team = factory.SubFactory(TeamFactory)
    name = "API server"
    amount_usd = Decimal("500")

    @factory.post_generation
    def channels(self, create, extracted, **kwargs):
        if create and extracted:
            self.channels.set(extracted)


def email_channel(team, *, addresses=("alerts@a.example",), members=(), name="Team mail"):
    return ChannelFactory(team=team, name=name, addresses=list(addresses), members=members)


def webhook_channel(team, receiver, name="Chat hook") -> Channel:
    """A webhook channel to the test receiver, which then checks the channel's signatures."""
    channel = ChannelFactory(team=team, webhook=True, name=name, url=receiver.url)
    receiver.secret = channel.secret
    return channel


def make_budget(team, amount="500", channels=(), **extra) -> Budget:
    return BudgetFactory(team=team, amount_usd=Decimal(amount), channels=channels, **extra)


def chat_channel(team, kind: str, url: str, name: str | None = None, **extra) -> Channel:
    """A Slack, Discord or Teams channel posting to `url` (a test receiver)."""
    return ChannelFactory(
        team=team, kind=kind, name=name or f"{kind} alerts", addresses=[], url=url, **extra
    )
