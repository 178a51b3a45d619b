"""Names a person chooses: one name per machine within its owner's account (and one per
project within a team, usage.projects), compared without case, so two rows are never listed
under the same name."""

import unicodedata
from typing import TypeVar

from django.db.models import Model, QuerySet

from usage.models import Machine

M = TypeVar("M", bound=Model)

NAME_MAX = Machine._meta.get_field("name").max_length or 100


HIDDEN_CHARACTERS = (
    "A name cannot hold control or invisible formatting characters (such as a right-to-left "
    "override), which would make it read differently from what it is."
)


def has_hidden_characters(text: str) -> bool:
    """Whether `text` holds a control (Cc) or format (Cf) character: NUL, a bidi override, a
    zero-width joiner…, which make a name display as something else (Unicode categories)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


class MachineNameError(ValueError):
    """A name the machine cannot take; the message says why, for a form or a 400."""


def readable_name(name: str | None, limit: int, what: str) -> str:
    """`name` stripped, when it is 1 to `limit` characters without hidden characters.
    Raises ValueError with a sentence naming `what` ("machine", "project") otherwise."""
    name = (name or "").strip()
    if not name or len(name) > limit:
        raise ValueError(f"A {what} name must be 1 to {limit} characters.")
    if has_hidden_characters(name):
        raise ValueError(HIDDEN_CHARACTERS)
    return name


def name_clash(others: QuerySet[M], field: str, name: str, keep: M) -> M | None:
    """The first row of `others`, other than `keep`, whose `field` equals `name` in any case."""
    return others.filter(**{f"{field}__iexact": name}).exclude(pk=keep.pk).first()


def clean_machine_name(machine: Machine, name: str) -> str:
    """`name` stripped, if `machine` may take it: 1 to NAME_MAX characters and no other
    machine of the same owner (retired ones included) has it, whatever the case.
    Raises MachineNameError with a sentence for the person renaming."""
    try:
        name = readable_name(name, NAME_MAX, "machine")
    except ValueError as exc:
        raise MachineNameError(str(exc)) from None
    clash = name_clash(Machine.objects.filter(owner_id=machine.owner_id), "name", name, machine)
    if clash is not None:
        retired = " (retired)" if clash.retired_at is not None else ""
        raise MachineNameError(
            f"“{clash.name}”{retired} is already the name of another machine of this "
            "account; choose a name that tells them apart."
        )
    return name


def rename_machine(machine: Machine, name: str) -> str:
    """Give `machine` the name a person chose (clean_machine_name's rules); returns the old
    name. The agent's own name for it (`reported_name`) stays, so its next sync keeps this
    one (usage.ingest.pipeline)."""
    clean = clean_machine_name(machine, name)
    old = machine.name
    machine.name = clean
    machine.save(update_fields=["name"])
    return old


def free_machine_name(owner_id: int, name: str, exclude_pk: int | None = None) -> str:
    """`name` as an agent reported it, made unique among the owner's machines the way a person
    would tell them apart: "pc-one", then "pc-one (2)", "pc-one (3)"… (clean_machine_name's
    rule, applied at ingest, where refusing the report would lose its usage)."""
    taken = {
        other.lower()
        for other in Machine.objects.filter(owner_id=owner_id)
        .exclude(pk=exclude_pk)
        .values_list("name", flat=True)
    }
    if name.lower() not in taken:
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: NAME_MAX - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        number += 1
