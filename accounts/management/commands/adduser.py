"""`adduser EMAIL --team SLUG [--role …]`: team, user, membership, allow-list; idempotent."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug
from django.db import transaction

from accounts.models import AllowedEmail, Membership, Role, Team, User, validate_timezone


class Command(BaseCommand):
    help = "Create (or update) a user, their team, membership and allow-list entry."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--team", required=True, help="Team slug; created if missing.")
        parser.add_argument("--role", choices=Role.values, default=Role.MEMBER)
        parser.add_argument("--team-name", help="Display name for a new team (default: the slug).")
        parser.add_argument("--timezone", help="Reporting timezone for a new team (default UTC).")

    def handle(self, *args, **opts):
        email = opts["email"].strip().lower()
        slug = opts["team"].strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{opts['email']!r} is not a valid email address.") from None
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(
                f"--team {opts['team']!r}: use letters, numbers, hyphens or underscores."
            ) from None
        if opts.get("timezone"):
            try:
                validate_timezone(opts["timezone"])
            except ValidationError as exc:
                raise CommandError(f"--timezone: {exc.messages[0]}") from None
        max_slug = Team._meta.get_field("slug").max_length
        if max_slug is not None and len(slug) > max_slug:
            raise CommandError("--team: use at most 60 characters.")
        role = opts["role"]
        with transaction.atomic():
            team, team_created = Team.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": opts.get("team_name") or slug,
                    "timezone": opts.get("timezone") or "UTC",
                },
            )
            user = User.objects.filter(email__iexact=email).first()
            user_created = user is None
            if user is None:
                user = User.objects.create_user(email)
            elif not user.is_active:
                user.is_active = True
                user.save(update_fields=["is_active"])
            membership = Membership.objects.filter(user=user).first()
            if membership and membership.team_id != team.id:
                raise CommandError(
                    f"{email} already belongs to team {membership.team.slug!r}; "
                    "remove them there first."
                )
            if membership is None:
                Membership.objects.create(user=user, team=team, role=role)
            elif membership.role != role:
                if (
                    membership.role == Role.OWNER
                    and not team.memberships.filter(role=Role.OWNER)
                    .exclude(pk=membership.pk)
                    .exists()
                ):
                    raise CommandError(f"{email} is the last owner of {slug}; add another first.")
                membership.role = role
                membership.save(update_fields=["role"])
            entry = AllowedEmail.objects.filter(pattern=email).first()
            if entry is not None and entry.team_id != team.id:
                raise CommandError(
                    f"{email} is on the allow-list of team {entry.team.slug!r}; "
                    "remove it there first."
                )
            AllowedEmail.objects.update_or_create(
                pattern=email, defaults={"team": team, "role": role}
            )
        what = "Created" if user_created else "Updated"
        self.stdout.write(f"{what} {email} as {role} of team {team.slug}.")
        if team_created:
            self.stdout.write(f"Created team {team.slug} (timezone {team.timezone}).")
