"""Factories shared by the test areas: subscriptions, machines and projects."""

import uuid
from datetime import UTC, datetime

import factory

from usage.models import Machine, Project, Subscription


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    label = factory.Sequence(lambda n: f"Claude account {n}")
    plan = "max5x"


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    uuid = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"machine-{n}")
    team = factory.LazyAttribute(lambda o: o.owner.team)
    subscription = factory.LazyAttribute(lambda o: Subscription.default_for(o.owner))
    os = "Linux 6.1 x86_64"
    agent_version = "0.1.0"
    ccusage_version = "20.0.24"
    last_seen_at = factory.LazyFunction(lambda: datetime.now(UTC))


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("team", "key")

    key = factory.Sequence(lambda n: f"-home-dev-src-project{n}")
    display_name = factory.LazyAttribute(lambda o: o.key.rsplit("-", 1)[-1])
