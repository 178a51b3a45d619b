"""The pages' forms: GET filters (a bad value becomes an error on the page and is then ignored,
so a hand-edited URL never gives an error page), the explorer's and sessions list's long
menus (searched past MENU_LIMIT options), machine renames and subscription settings."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple, cast

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.urls import reverse

from accounts.access import Viewer
from accounts.models import User, calendar_team
from dashboards.periods import PRESET_LABELS, PRESETS, preset_range
from telemetry_site.api.fields import day_in_range
from telemetry_site.formatting import model_name
from usage import queries
from usage.models import IngestPath, Plan, Source, Subscription

SOURCE_CHOICES = [("", "All sources"), *Source.choices]
UNKNOWN_CHOICE = "“%(value)s” is not one of the options, so this filter is ignored."


def _choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """A ChoiceField of the form by name (form.fields is typed as holding plain Fields)."""
    return cast(forms.ChoiceField, form.fields[name])


def _machine_label(machine, viewer: Viewer) -> str:
    """A machine's name in the filter menus: the path it came by when it is Claude Code's OTLP
    export, the owner when it is someone else's."""
    label = f"{machine.name} · OTLP" if machine.ingest_path == IngestPath.OTLP else machine.name
    return label if machine.owner_id == viewer.user.pk else f"{label} ({machine.owner.email})"


def day_field() -> forms.DateField:
    """An optional date input of a filter form, within the days the site can store."""
    return forms.DateField(
        required=False,
        validators=[day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class PresetSelect(forms.Select):
    """The date preset menu; each option carries its days (`data-since`, `data-until`) so
    app.js fills the date fields at once, and typing a date switches the menu to Custom."""

    def __init__(self, *args, today: date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value and value != "custom" and self.today is not None:
            since, until = preset_range(str(value), self.today)
            option["attrs"]["data-since"] = since.isoformat()
            option["attrs"]["data-until"] = until.isoformat()
        return option


class FilterForm(forms.Form):
    """A GET filter form: a bad value becomes an error shown on the page, and is then ignored.

    A form with dates has a `range` preset first (last 7 or 30 days, month to date, last
    month, custom) counted in the team's days (`today`); a preset other than Custom sets the
    dates, which the fields then show. An end date before the start date is read as the range
    between the two: the dates are swapped in the fields too, so the page shows the data for
    the dates its fields say.
    """

    # A page whose dates may be left open ("any time") offers that as the first preset.
    open_range = False

    def __init__(self, *args, today: date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today or calendar_team(None).today()
        if "since" in self.fields:
            choices = [("", "Any time")] if self.open_range else []
            self.fields["range"] = forms.ChoiceField(
                required=False,
                label="Dates",
                choices=[*choices, *PRESETS],
                widget=PresetSelect(today=self.today, attrs={"data-preset": ""}),
            )
            self.order_fields(["range", *[n for n in self.fields if n != "range"]])
        for field in self.fields.values():
            if isinstance(field, forms.ChoiceField):
                field.error_messages["invalid_choice"] = UNKNOWN_CHOICE

    def _rewrite(self, **values: str) -> None:
        """Show `values` in the fields (the form's data is the submitted query string)."""
        data = QueryDict(mutable=True)
        data.update(self.data)
        for name, value in values.items():
            data[name] = value
        self.data = data

    @property
    def range_label(self) -> str:
        """The preset's name, or the dates for a custom range ("Nov 1, 2026 to Nov 24, 2026")."""
        preset = self.value("range")
        if preset and preset != "custom":
            return PRESET_LABELS[preset]
        since, until = self.value("since"), self.value("until")
        if since and until:
            return f"{since:%b} {since.day}, {since.year} to {until:%b} {until.day}, {until.year}"
        return "Any time"

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        preset = cleaned.get("range")
        if preset and preset != "custom":
            cleaned["since"], cleaned["until"] = preset_range(preset, self.today)
            self._rewrite(since=cleaned["since"].isoformat(), until=cleaned["until"].isoformat())
            for name in ("since", "until"):
                # A preset replaces whatever the date fields held, a bad value included.
                self.errors.pop(name, None)
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            cleaned["since"], cleaned["until"] = until, since
            self._rewrite(since=until.isoformat(), until=since.isoformat())
            self.add_error(
                None,
                f"The end date is before the start date, so the two were swapped: showing "
                f"{until:%b} {until.day}, {until.year} to {since:%b} {since.day}, {since.year}.",
            )
        return cleaned

    def value(self, name: str):
        """The cleaned value of a field, or None when it is empty or invalid."""
        if not self.is_bound:
            return None
        self.is_valid()
        if name in self.errors:
            return None
        return self.cleaned_data.get(name) or None


class DashboardFilters(FilterForm):
    """The filters shared by the explorer and the sessions list; options are what the viewer sees.

    Invalid values become form errors shown above the results; the filter is then ignored, so a
    hand-edited URL never produces an error page.
    """

    since = day_field()
    until = day_field()
    machine = forms.ChoiceField(required=False)
    project = forms.ChoiceField(required=False)
    scope = forms.ChoiceField(required=False)
    member = forms.ChoiceField(required=False)
    source = forms.ChoiceField(required=False, choices=SOURCE_CHOICES)

    open_range = True

    def __init__(
        self,
        data,
        *,
        viewer: Viewer,
        machines: "Menu",
        projects: "Menu",
        members: "Menu",
        **kwargs,
    ):
        kwargs.setdefault("today", viewer.today())
        super().__init__(data, **kwargs)
        self.viewer = viewer
        _choice_field(self, "machine").choices = [("", "All machines")] + [
            (str(m.uuid), _machine_label(m, viewer)) for m in machines.options
        ]
        _choice_field(self, "project").choices = [("", "All projects")] + [
            (str(p.public_id), p.display_name) for p in projects.options
        ]
        if viewer.sees_others:
            _choice_field(self, "scope").choices = [("me", "Only mine"), ("team", "Whole team")]
            _choice_field(self, "member").choices = [("", "Everyone")] + [
                (str(u.public_id), u.email) for u in members.options
            ]
        else:
            del self.fields["member"]
            del self.fields["scope"]
        self.menus = {"machine": machines, "project": projects, "member": members}
        for name, menu in self.menus.items():
            if menu.search and name in self.fields:
                # The menu holds "All" and the chosen option; menu_search.js adds a search box
                # that fills it from the kind's search endpoint (dashboards.views.explorer).
                self.fields[name].widget.attrs.update(
                    {
                        "data-search": reverse("usage_filter_search", args=[name]),
                        "data-search-label": SEARCH_PROMPTS[name],
                    }
                )


class SessionFilters(DashboardFilters):
    """The sessions list's filters plus a search (a session id, or part of a project's name)
    and a 5-hour block (`<subscription public id>/<start in Unix seconds>`, from the blocks
    page's links) whose sessions to list."""

    q = forms.CharField(
        required=False,
        max_length=200,
        strip=True,
        label="Session id or project",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "id or project name"}),
    )
    block = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def clean_block(self) -> tuple[str, int] | None:
        value = self.cleaned_data.get("block") or ""
        if not value:
            return None
        subscription, _, start = value.partition("/")
        if not submitted_ids(subscription) or not start.isdigit():
            raise forms.ValidationError("This link to a block is not one the page can read.")
        return submitted_ids(subscription)[0], int(start)


def block_link(block) -> str:
    """The sessions list's `block` value for a block (see SessionFilters)."""
    return f"{block.subscription.public_id}/{int(block.start_time.timestamp())}"


def with_defaults(query: QueryDict, **defaults: str) -> QueryDict:
    """The query string with defaults for the parameters it leaves empty, for a bound form.

    Dates given without a preset (a link from before presets, a bookmark) are a custom range.
    """
    data = query.copy()
    if not data.get("range") and (data.get("since") or data.get("until")):
        data["range"] = "custom"
    for name, value in defaults.items():
        if not data.get(name):
            data[name] = value
    return data


class SubscriptionChoice(NamedTuple):
    """A subscription as a filter menu needs it: a big team's thousand are read as these rows
    (`subscription_choices`), not as models with their owners."""

    pk: int
    public_id: uuid.UUID
    label: str
    owner_id: int
    owner_email: str


def subscription_choices(subscriptions: QuerySet[Subscription]) -> list[SubscriptionChoice]:
    """`subscriptions` as menu rows, by owner email then label, in one query."""
    rows = subscriptions.order_by("owner__email", "label").values_list(
        "pk", "public_id", "label", "owner_id", "owner__email"
    )
    return [SubscriptionChoice(*row) for row in rows]


class BlockFilters(FilterForm):
    """Blocks page filters: a date range (block start, viewer's days) and one subscription."""

    since = day_field()
    until = day_field()
    scope = forms.ChoiceField(required=False)
    subscription = forms.ChoiceField(required=False)

    def __init__(
        self, data, *, viewer: Viewer, subscriptions: Iterable[SubscriptionChoice], **kwargs
    ):
        kwargs.setdefault("today", viewer.today())
        super().__init__(data, **kwargs)
        _choice_field(self, "subscription").choices = [("", "All subscriptions")] + [
            (
                str(s.public_id),
                s.label if s.owner_id == viewer.user.pk else f"{s.label} ({s.owner_email})",
            )
            for s in subscriptions
        ]
        if viewer.sees_others:
            _choice_field(self, "scope").choices = [("me", "Only mine"), ("team", "Whole team")]
        else:
            del self.fields["scope"]


class PeriodFilters(FilterForm):
    """The period of the overview and team pages: a preset (month to date unless chosen) or
    custom dates; the pages' breakdowns and the period's stat card follow it."""

    since = day_field()
    until = day_field()

    DEFAULT_PRESET = "mtd"
    fallback = False
    days: tuple[date, date]

    def clean(self) -> dict[str, Any]:
        """Fill the open end of a custom range, or fall back to the default period.

        A start without an end runs to today (or is one day when it is after today); an end
        without a start starts on the 1st of the end's month. A bad value (an unknown preset,
        a date that is no date) is an error on the page, and the page shows the month to date
        with the menu and the fields saying so, so the card's label always names the days of
        its figure.
        """
        cleaned = super().clean()
        self.fallback = any(name in self.errors for name in ("range", "since", "until"))
        chosen: tuple[date | None, date | None] = (cleaned.get("since"), cleaned.get("until"))
        since, until = chosen
        if self.fallback or (since is None and until is None):
            since, until = preset_range(self.DEFAULT_PRESET, self.today)
            if self.fallback:
                self.add_error(
                    None,
                    "A value of the period could not be used, so the page shows the month to date.",
                )
                self._rewrite(range=self.DEFAULT_PRESET)
        elif until is None and since is not None:
            until = max(since, self.today)
        elif since is None and until is not None:
            since = until.replace(day=1)
        assert since is not None and until is not None  # every branch above set both
        self.days = (since, until)
        self._rewrite(since=since.isoformat(), until=until.isoformat())
        return cleaned

    @property
    def range_label(self) -> str:
        """The preset's name or the dates, of the days `period()` returns."""
        self.is_valid()
        if self.fallback:
            return PRESET_LABELS[self.DEFAULT_PRESET]
        preset = self.value("range")
        if preset and preset != "custom":
            return PRESET_LABELS[preset]
        since, until = self.days
        return f"{since:%b} {since.day}, {since.year} to {until:%b} {until.day}, {until.year}"

    @property
    def preset(self) -> str | None:
        """The preset of `period()`'s days ("custom" or None for dates), which picks the
        period they are compared with (`dashboards.periods.previous_period`)."""
        self.is_valid()
        return self.DEFAULT_PRESET if self.fallback else self.value("range")

    def period(self) -> tuple[date, date]:
        """The chosen days (team days, inclusive): a preset, custom dates with an open end
        filled in (see clean), or the month to date when a value was unusable."""
        self.is_valid()
        return self.days


def period_filters(request, today: date) -> PeriodFilters:
    """The overview's and team page's period form, bound with its defaults (month to date)."""
    return PeriodFilters(with_defaults(request.GET, range="mtd"), today=today)


PERIODS = [("day", "Day"), ("week", "Week"), ("month", "Month")]


SPLITS = [
    ("", "Nothing"),
    ("project", "Project"),
    ("model", "Model"),
    ("machine", "Machine"),
    ("member", "Member"),
    ("source", "Source"),
]


# Splits that show individual members' figures, which only some viewers may see for the team.
INDIVIDUAL_SPLITS = ("machine", "member")
MEMBER_SPLIT_REFUSED = (
    "Only team admins see the team split by machine or member, so the table shows days instead."
)


EXPLORER_DAYS = 30


class ExplorerFilters(DashboardFilters):
    """The explorer's filters: those of the sessions list plus period, split and model.

    Everyone in a team may ask for the whole team's totals (scope=team); breaking the team down
    by machine or member needs the right to see other members (accounts.access).
    """

    period = forms.ChoiceField(required=False, choices=PERIODS, label="Over time by")
    split = forms.ChoiceField(required=False, choices=SPLITS, label="Split by")
    model = forms.ChoiceField(required=False)

    open_range = False
    field_order = [
        "range",
        "since",
        "until",
        "period",
        "split",
        "scope",
        "member",
        "machine",
        "project",
        "model",
        "source",
    ]

    def __init__(
        self,
        data,
        *,
        viewer: Viewer,
        models: list[str],
        machines: "Menu",
        projects: "Menu",
        members: "Menu",
        **kwargs,
    ):
        super().__init__(
            data, viewer=viewer, machines=machines, projects=projects, members=members, **kwargs
        )
        self._looked_up: dict[str, str] = {}
        _choice_field(self, "model").choices = [("", "All models")] + [
            (m, model_name(m)) for m in models
        ]
        if viewer.team is not None and "scope" not in self.fields:
            self.fields["scope"] = forms.ChoiceField(
                required=False, choices=[("me", "Only mine"), ("team", "Whole team (totals)")]
            )
            self.order_fields(self.field_order)
        if not viewer.sees_others:
            _choice_field(self, "split").choices = [c for c in SPLITS if c[0] != "member"]
            # The option is hidden from this viewer; a link or an old URL may still ask for it.
            self.fields["split"].error_messages["invalid_choice"] = (
                MEMBER_SPLIT_REFUSED if self.data.get("split") == "member" else UNKNOWN_CHOICE
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        split = cleaned.get("split")
        if (
            split in INDIVIDUAL_SPLITS
            and cleaned.get("scope") == "team"
            and not self.viewer.sees_others
            and not cleaned.get("machine")
        ):
            self.add_error("split", MEMBER_SPLIT_REFUSED)
        return cleaned

    def query(self, today: date) -> dict:
        """aggregate_usage's keyword arguments (besides group_by) for these filters."""
        until = self.value("until") or today
        since = self.value("since") or until - timedelta(days=EXPLORER_DAYS - 1)
        if since > until:
            # A start after the default end (today): the form shows the error; count back.
            since = until - timedelta(days=EXPLORER_DAYS - 1)
        params = {"since": since, "until": until, "scope": self.value("scope") or "me"}
        for name in ("machine", "project", "model", "member", "source"):
            if (value := self.value(name)) is not None:
                params[name] = value
        return params

    def machine_labels(self, keys: Iterable[object] = ()) -> dict[str, str]:
        """Machine UUID → the name the menu gives it (with the owner for someone else's): the
        menu's machines, and for a searched menu also those of `keys` the viewer may see
        (one query; the keys of a table split by machine)."""
        # __init__ set these choices: flat (machine UUID, label) pairs.
        choices = cast(list[tuple[str, str]], _choice_field(self, "machine").choices)
        labels = {key: label for key, label in choices if key}
        menu = self.menus["machine"]
        # The table and the page's config ask for the same rows: read them once.
        asked = _uuids(keys)
        wanted = asked - labels.keys() - self._looked_up.keys()
        if menu.search and wanted:
            for machine in menu.rows.filter(uuid__in=wanted):
                self._looked_up[str(machine.uuid)] = menu_label("machine", machine, self.viewer)
        found = asked & self._looked_up.keys()
        return {**labels, **{key: self._looked_up[key] for key in found}}

    def member_ids(self, keys: Iterable[object] = ()) -> set[str]:
        """Public ids of the team's current members among the member menu's options and, for
        a searched menu, among `keys` (one query; the keys of a table split by member)."""
        if "member" not in self.fields:
            return set()
        choices = cast(list[tuple[str, str]], _choice_field(self, "member").choices)
        current = {key for key, _ in choices if key}
        menu = self.menus["member"]
        wanted = _uuids(keys) - current
        if menu.search and wanted:
            found = menu.rows.filter(public_id__in=wanted).values_list("public_id", flat=True)
            current.update(str(public_id) for public_id in found)
        return current

    def model_labels(self) -> dict[str, str]:
        """Model id → its friendly name (telemetry_site.formatting.model_name), for the menu's
        models; JavaScript names chart series and table rows with it."""
        choices = cast(list[tuple[str, str]], _choice_field(self, "model").choices)
        return {key: label for key, label in choices if key}

    @property
    def group_by(self) -> str:
        """The table's rows: the split when there is one, else the periods."""
        return self.value("split") or self.value("period") or "day"


class RenameForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)


class ProjectNameForm(forms.Form):
    name = forms.CharField(max_length=200, strip=True)


class SubscriptionForm(forms.ModelForm):
    class Meta:
        model = Subscription
        fields = ["label", "plan", "monthly_price_usd", "is_default"]
        labels = {
            "label": "Name",
            "monthly_price_usd": "Your monthly price (USD)",
            "is_default": "Default for new machines",
        }
        help_texts = {
            "label": "How you tell your Claude accounts apart, e.g. “Work” or “Personal”.",
            "monthly_price_usd": "Leave empty to use the list price of the plan. Required for "
            "a custom price; for Team and Enterprise, the price of your seat.",
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["monthly_price_usd"].widget.attrs.update({"min": "0", "step": "0.01"})
        plan = _choice_field(self, "plan")
        # No plan is preselected: a guessed plan would be shown as fact in plan value.
        plan.choices = [("", "Choose a plan…"), *Plan.choices]
        plan.error_messages["required"] = "Choose the plan, or “Plan unknown” if you are not sure."
        if not self.instance.pk:
            self.initial.pop("plan", None)
            plan.initial = None

    def clean_monthly_price_usd(self):
        price = self.cleaned_data["monthly_price_usd"]
        if price is not None and price < 0:
            raise forms.ValidationError("A price cannot be negative.")
        return price

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if not label:
            raise forms.ValidationError("Give the subscription a name.")
        clash = Subscription.objects.filter(owner=self.owner, label__iexact=label)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("You already have a subscription with this name.")
        return label

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("plan") == Plan.CUSTOM and data.get("monthly_price_usd") is None:
            self.add_error("monthly_price_usd", "A custom plan needs its monthly price.")
        if data.get("plan") == Plan.UNKNOWN and data.get("monthly_price_usd") is not None:
            self.add_error("plan", "Choose the plan this price is for.")
        return data

    @transaction.atomic
    def save(self, commit=True):
        sub = super().save(commit=False)
        sub.owner = self.owner
        has_default = Subscription.objects.filter(owner=self.owner, is_default=True)
        if sub.pk:
            has_default = has_default.exclude(pk=sub.pk)
        if sub.is_default:
            # One default per owner (a database constraint): clear the old one first.
            has_default.update(is_default=False)
        elif not has_default.exists():
            # New machines need somewhere to go: the only subscription stays the default.
            sub.is_default = True
        sub.save()
        return sub


# A filter menu with more options than this becomes a search: the menu holds "All" and the
# chosen option, and menu_search.js fills it from the kind's search endpoint as the viewer types.
# A 1,000-member team has 3,000 machines; rendering them all cost most of the page's time.
MENU_LIMIT = 50
# Matches one search answers with; `more` says there are others (type more to narrow).
SEARCH_RESULTS = 20
# Ids one label look-up may ask for (explorer.js asks in chunks of this many).
SEARCH_MAX_IDS = 100
SEARCH_MAX_TEXT = 100
SEARCH_KINDS = ("machine", "member", "project")
SEARCH_PROMPTS = {
    "machine": "Search machines",
    "member": "Search members",
    "project": "Search projects",
}
# The field each kind's menu values are.
_MENU_KEYS = {"machine": "uuid", "member": "public_id", "project": "public_id"}


@dataclass
class Menu:
    """One filter menu's options. `rows` is everything the viewer may pick (a queryset, in
    menu order); `options` every row when there are at most MENU_LIMIT, else (`search` True)
    only the row the query string chooses, if it is one of `rows`."""

    rows: QuerySet
    options: list
    search: bool


def menu_rows(viewer: Viewer, kind: str, scope: str | None = None) -> QuerySet:
    """What the `kind` ("machine", "member" or "project") menu may offer this viewer, in menu
    order: the team's machines for those who see other members, else their own ("me" asks
    for their own in any case); the team's members (only for those who see them); the team's
    projects (no aliases). Raises PermissionDenied for another member's machines or the
    members to a viewer who may not see them, KeyError for another kind."""
    if kind not in _MENU_KEYS:
        raise KeyError(kind)
    if kind == "machine":
        if scope == "team" and not viewer.sees_others:
            raise PermissionDenied("Only team admins see other members' machines.")
        whose = "team" if viewer.sees_others and scope != "me" else "me"
        # A menu names machines and their owners; it needs no subscription.
        return (
            queries.machines_for(viewer.user, scope=whose)
            .select_related(None)
            .select_related("owner")
        )
    if kind == "member":
        if not viewer.sees_others:
            raise PermissionDenied("Only team admins see the team's members.")
        return viewer.visible_members()
    return queries.projects_for(viewer.user).filter(alias_of__isnull=True)


def menu_label(kind: str, row, viewer: Viewer) -> str:
    """An option's text: a machine's name (" · OTLP" when it comes by Claude Code's OTLP
    export, the owner's email when it is someone else's), a member's email, a project's name."""
    if kind == "machine":
        return _machine_label(row, viewer)
    if kind == "member":
        return row.email
    return row.display_name


def explorer_menus(viewer: Viewer, data: QueryDict) -> dict[str, Menu]:
    """The machine, project and member menus of the explorer and the sessions list, as
    DashboardFilters' keyword arguments `machines`, `projects`, `members`: at most
    MENU_LIMIT + 1 rows read per menu, plus the chosen one of a searched menu, so the page
    costs the same at any team size."""
    menus = {}
    for kind, argument in (("machine", "machines"), ("project", "projects"), ("member", "members")):
        if kind == "member" and not viewer.sees_others:
            menus[argument] = Menu(rows=User.objects.none(), options=[], search=False)
            continue
        rows = menu_rows(viewer, kind)
        first = list(rows[: MENU_LIMIT + 1])
        if len(first) <= MENU_LIMIT:
            menus[argument] = Menu(rows=rows, options=first, search=False)
            continue
        chosen = submitted_ids(data.get(kind))
        options = list(rows.filter(**{f"{_MENU_KEYS[kind]}__in": chosen})) if chosen else []
        menus[argument] = Menu(rows=rows, options=options, search=True)
    return menus


def menu_search(
    viewer: Viewer, kind: str, *, text: str = "", ids: Iterable[str] = (), scope: str | None = None
) -> tuple[list[dict[str, str]], bool]:
    """The search endpoint's answer: ([{"id", "label"}], more). With `ids` (UUIDs, at most
    SEARCH_MAX_IDS) the labels of those the viewer may pick (the others are left out);
    otherwise up to SEARCH_RESULTS options whose name (a machine's host name and owner, a
    member's name, a project's key too) contains `text`, case-insensitively, in menu order,
    and whether more match. Raises PermissionDenied as menu_rows does."""
    rows = menu_rows(viewer, kind, scope)
    key = _MENU_KEYS[kind]
    if ids:
        found = list(rows.filter(**{f"{key}__in": list(ids)}))
        more = False
    else:
        if text:
            if kind == "machine":
                match = (
                    Q(name__icontains=text)
                    | Q(hostname__icontains=text)
                    | Q(owner__email__icontains=text)
                    | Q(owner__name__icontains=text)
                )
            elif kind == "member":
                match = Q(email__icontains=text) | Q(name__icontains=text)
            else:
                match = Q(display_name__icontains=text) | Q(key__icontains=text)
            rows = rows.filter(match)
        found = list(rows[: SEARCH_RESULTS + 1])
        more = len(found) > SEARCH_RESULTS
        found = found[:SEARCH_RESULTS]
    return [
        {"id": str(getattr(row, key)), "label": menu_label(kind, row, viewer)} for row in found
    ], more


def _uuids(keys: Iterable[object]) -> set[str]:
    """The keys that are UUIDs, as canonical strings (a removed key's row is named by its pk)."""
    return {found for key in keys for found in submitted_ids(str(key))}


def submitted_ids(value: str | None) -> list[str]:
    """A submitted public id as a one-item list for `public_id__in`, or [] when it is not a
    UUID (so the lookup finds no row instead of raising)."""
    try:
        return [str(uuid.UUID(str(value)))]
    except (TypeError, ValueError):
        return []
