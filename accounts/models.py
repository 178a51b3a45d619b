"""Users (email is the login), teams, memberships with roles, the allow-list and API tokens."""

import base64
import hashlib
import json
import secrets
import uuid
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, overload

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.crypto import salted_hmac


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA timezone (e.g. Europe/Paris).")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        # Nobody logs in with a password here; an unusable one keeps Django's checks honest.
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, **extra)

    def get_by_natural_key(self, email: str | None) -> "User":
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    # Empty means "use my team's reporting timezone".
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=dj_timezone.now)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    @property
    def team_membership(self) -> "Membership | None":
        try:
            return self.membership
        except Membership.DoesNotExist:
            return None

    @property
    def team(self) -> "Team | None":
        membership = self.team_membership
        return membership.team if membership else None

    def viewer_timezone(self) -> str:
        if self.timezone:
            return self.timezone
        team = self.team
        return team.timezone if team else "UTC"

    ACTIVITY_GRANULARITY = timedelta(minutes=1)

    def record_activity(self) -> None:
        """Note that the user did something, at most once a minute so pages stay read-only."""
        now = dj_timezone.now()
        if self.last_activity_at and now - self.last_activity_at < self.ACTIVITY_GRANULARITY:
            return
        # The condition repeats in SQL, so two parallel requests write once.
        User.objects.filter(pk=self.pk).filter(
            models.Q(last_activity_at__isnull=True)
            | models.Q(last_activity_at__lte=now - self.ACTIVITY_GRANULARITY)
        ).update(last_activity_at=now)
        self.last_activity_at = now


class Team(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # The timezone every agent of the team passes to ccusage, so days line up across machines.
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    members_see_each_other = models.BooleanField(
        default=False,
        help_text="When on, members see each other's figures; admins always do.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The reporting timezone; UTC when the stored name is unknown to this system's tzdata."""
        return zone_or_utc(self.timezone)

    def today(self, now: datetime | None = None) -> date:
        """Today in the team's reporting timezone: the calendar its usage days are counted in."""
        return (now or dj_timezone.now()).astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        """The UTC instant the team's day `day` begins (its local midnight)."""
        return datetime.combine(day, time.min, tzinfo=self.zone).astimezone(UTC)

    @overload
    def day_bounds(self, since: date, until: date) -> tuple[datetime, datetime]: ...
    @overload
    def day_bounds(self, since: date, until: None) -> tuple[datetime, None]: ...
    @overload
    def day_bounds(
        self, since: date | None, until: date | None
    ) -> tuple[datetime | None, datetime | None]: ...
    def day_bounds(
        self, since: date | None, until: date | None
    ) -> tuple[datetime | None, datetime | None]:
        """Team days `since`..`until` (inclusive) as UTC instants [start, end); None stays open."""
        start = self.day_start(since) if since else None
        end = self.day_start(until + timedelta(days=1)) if until else None
        return start, end


def calendar_team(team: "Team | None") -> "Team":
    """The team whose calendar counts days: `team`, or an unsaved UTC team for a user outside
    any team (so "today" and day bounds have one definition: Team.today, Team.day_bounds)."""
    return team if team is not None else Team(timezone="UTC")


def zone_or_utc(name: str | None) -> zoneinfo.ZoneInfo:
    """`ZoneInfo(name)`, or UTC for an empty or unknown name (a zone removed from tzdata)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user belongs to one team; the role decides what they see and manage."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    # Not a column: set by accounts.views for the members page (may this member log in now).
    admitted: bool

    class Meta:
        ordering = ["team", "user__email"]
        indexes = [
            # Team pages list members by team and role.
            models.Index(fields=["team", "role"], name="membership_team_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


class AllowedEmail(models.Model):
    """An address (`dev@example.com`) or a whole domain (`@example.com`) that may log in."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="allowed_emails")
    pattern = models.CharField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["team", "pattern"]
        constraints = [
            # Login looks an address up by its exact pattern and by its @domain.
            models.UniqueConstraint(fields=["pattern"], name="allowedemail_unique_pattern"),
        ]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.team} ({self.role})"

    def save(self, *args, **kwargs):
        self.pattern = self.pattern.strip().lower()
        super().save(*args, **kwargs)

    @classmethod
    def match(cls, email: str) -> "AllowedEmail | None":
        """The entry admitting this address: an exact address wins over its domain."""
        email = email.strip().lower()
        if "@" not in email:
            return None
        domain = "@" + email.rsplit("@", 1)[1]
        entries = {e.pattern: e for e in cls.objects.filter(pattern__in=[email, domain])}
        return entries.get(email) or entries.get(domain)

    @property
    def is_domain(self) -> bool:
        return self.pattern.startswith("@")

    def admits(self, email: str) -> bool:
        email = email.strip().lower()
        if self.is_domain:
            return email.endswith(self.pattern)
        return email == self.pattern


class Scope(models.TextChoices):
    INGEST = "ingest", "Ingest (agent uploads)"
    READ = "read", "Read (API queries)"
    METRICS = "metrics", "Metrics (Prometheus scrape of /metrics)"


TOKEN_PREFIX = "cct_"
TOKEN_SECRET_BYTES = 32
# base64url of 32 bytes without padding is 43 characters.
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def is_well_formed_token(raw: str) -> bool:
    """Cheap shape check, so garbage never reaches the database."""
    return (
        len(raw) == TOKEN_LENGTH
        and raw.startswith(TOKEN_PREFIX)
        and set(raw[len(TOKEN_PREFIX) :]) <= _TOKEN_ALPHABET
    )


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        now = dj_timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal token for the agent or scripts; only its SHA-256 is stored."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    last_four = models.CharField(max_length=4)
    # Authentication looks tokens up by this column (unique index).
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    LAST_USED_GRANULARITY = timedelta(minutes=1)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        return f"{self.prefix}…{self.last_four}"

    @classmethod
    def issue(
        cls, user: User, name: str, scopes: list[str], expires_at=None
    ) -> tuple["ApiToken", str]:
        """Create a token and return it with the raw secret, which is never stored."""
        valid = set(Scope.values)
        if not scopes or not set(scopes) <= valid:
            raise ValueError(f"scopes must be a non-empty subset of {sorted(valid)}")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=raw[: len(TOKEN_PREFIX) + 4],
            last_four=raw[-4:],
            token_hash=hash_token(raw),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        return token, raw

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= dj_timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired and self.user.is_active

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = dj_timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self, ip: str | None) -> None:
        """Record use, at most once a minute, so busy agents do not write on every request."""
        now = dj_timezone.now()
        if self.last_used_at and now - self.last_used_at < self.LAST_USED_GRANULARITY:
            return
        # The condition repeats in SQL, so parallel requests of one agent write once.
        ApiToken.objects.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True)
            | models.Q(last_used_at__lte=now - self.LAST_USED_GRANULARITY)
        ).update(last_used_at=now, last_used_ip=ip)
        self.last_used_at, self.last_used_ip = now, ip

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"


LOGIN_LINK_SALT = "accounts.login-link"


def hash_login_code(code: str) -> str:
    """Codes are compared without the dashes and case they are shown with, as allauth does."""
    normalised = "".join(ch for ch in code if ch.isalnum()).lower()
    return hash_token(normalised)


class LoginLink(models.Model):
    """A one-time login link that works in any browser; only the SHA-256 of its secret is kept.

    The URL carries the secret signed with a timestamp, so forged or stale links are turned
    away before any query; the row makes the link single-use.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_links")
    # The confirm view looks a link up by this column (unique index).
    token_hash = models.CharField(max_length=64, unique=True)
    # The same email's typed code (hashed): using either one spends both.
    code_hash = models.CharField(max_length=64, blank=True)
    next_url = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    # The hourly purge deletes by this column.
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)
    used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"login link for {self.user} ({self.status})"

    @property
    def status(self) -> str:
        if self.used_at is not None:
            return "used"
        if self.expires_at <= dj_timezone.now():
            return "expired"
        return "pending"

    @classmethod
    def max_age(cls) -> int:
        return settings.MAGIC_LINK_MAX_AGE

    @classmethod
    def issue(
        cls, user: User, *, next_url: str = "", ip: str | None = None, code: str = ""
    ) -> tuple["LoginLink", str]:
        """Create a link and return it with the signed secret for the URL (never stored)."""
        raw = secrets.token_urlsafe(32)
        now = dj_timezone.now()
        link = cls.objects.create(
            user=user,
            token_hash=hash_token(raw),
            code_hash=hash_login_code(code) if code else "",
            next_url=next_url,
            created_at=now,
            expires_at=now + timedelta(seconds=cls.max_age()),
            requested_ip=ip,
        )
        return link, signing.TimestampSigner(salt=LOGIN_LINK_SALT).sign(raw)

    @classmethod
    def find(cls, signed: str) -> "LoginLink | None":
        """The pending link behind a signed URL value, or None for anything else."""
        if len(signed) > 200:
            return None
        try:
            raw = signing.TimestampSigner(salt=LOGIN_LINK_SALT).unsign(
                signed, max_age=cls.max_age()
            )
        except signing.BadSignature:  # includes SignatureExpired
            return None
        link = cls.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if link is None or link.status != "pending":
            return None
        return link

    @classmethod
    def spent_for_code(cls, user: User, code: str) -> bool:
        """Was the link that came with this code already used (so the code is spent too)?"""
        return cls.objects.filter(
            user=user, code_hash=hash_login_code(code), used_at__isnull=False
        ).exists()

    def claim(self, ip: str | None) -> bool:
        """Mark the link used; False when another request used it first."""
        now = dj_timezone.now()
        claimed = LoginLink.objects.filter(
            pk=self.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now, used_ip=ip)
        if claimed:
            self.used_at, self.used_ip = now, ip
        return claimed == 1

    @classmethod
    def purge_expired(cls) -> int:
        """Delete links past their expiry, used or not; they can never log anyone in again."""
        deleted, _ = cls.objects.filter(expires_at__lte=dj_timezone.now()).delete()
        return deleted


def _login_mail_cipher() -> MultiFernet:
    """Fernet keys derived from SECRET_KEY (then each of SECRET_KEY_FALLBACKS, so a rotation
    does not strand mail still waiting): a database copy alone reveals no login link."""
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    salted_hmac(
                        "accounts.LoginMail", "fernet key", secret=secret, algorithm="sha256"
                    ).digest()
                )
            )
            for secret in secrets_in_use
        ]
    )


class LoginMail(models.Model):
    """A login email waiting to be sent: the outbox row written by the login request.

    The worker sends it (accounts.tasks.deliver_login_mail); the beat sweep
    (accounts.tasks.sweep_login_mail) sends again any row nobody sent, e.g. because the
    broker was down, for as long as its link is valid. The message carries the login
    secret, so it is stored encrypted and wiped once sent; the hourly purge deletes rows
    whose link has expired.
    """

    # Encrypted JSON: subject, body, from_email, to (a list of addresses).
    message = models.BinaryField()
    created_at = models.DateTimeField(default=dj_timezone.now)
    # The link's expiry: a message sent after it would be useless. The purge deletes by it.
    expires_at = models.DateTimeField(db_index=True)
    # Who is sending it and since when; a claim older than CLAIM_TIMEOUT was abandoned.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    # Longer than one SMTP conversation (EMAIL_TIMEOUT per step); shorter than the link.
    CLAIM_TIMEOUT = timedelta(minutes=2)
    # The worker normally sends it within seconds; the sweep waits this long before it helps.
    SWEEP_AFTER = timedelta(seconds=30)

    class Meta:
        indexes = [
            # The sweep looks for unsent mail whose link is still valid.
            models.Index(fields=["sent_at", "expires_at"], name="loginmail_unsent"),
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "waiting"
        return f"login mail {self.pk} ({state})"

    @classmethod
    def write(cls, *, subject: str, body: str, from_email: str, to: list[str]) -> "LoginMail":
        """Store one message to send, encrypted; it expires with the link it carries."""
        now = dj_timezone.now()
        payload = json.dumps(
            {"subject": subject, "body": body, "from_email": from_email, "to": to}
        ).encode()
        return cls.objects.create(
            message=_login_mail_cipher().encrypt(payload),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.MAGIC_LINK_MAX_AGE),
        )

    @classmethod
    def claim(cls, pk: int) -> "LoginMail | None":
        """Take an unsent, unexpired message to send it; None when it is sent, expired, gone
        or being sent by someone else right now (a conditional UPDATE, so one sender wins)."""
        now = dj_timezone.now()
        free = models.Q(claimed_at__isnull=True) | models.Q(claimed_at__lt=now - cls.CLAIM_TIMEOUT)
        taken = (
            cls.objects.filter(pk=pk, sent_at__isnull=True, expires_at__gt=now)
            .filter(free)
            .update(claimed_at=now, attempts=models.F("attempts") + 1)
        )
        return cls.objects.get(pk=pk) if taken == 1 else None

    @classmethod
    def waiting(cls) -> list[int]:
        """Ids of messages nobody sent (past SWEEP_AFTER) or whose sender gave up or died."""
        now = dj_timezone.now()
        stale = models.Q(claimed_at__isnull=True, created_at__lt=now - cls.SWEEP_AFTER) | models.Q(
            claimed_at__lt=now - cls.CLAIM_TIMEOUT
        )
        return list(
            cls.objects.filter(sent_at__isnull=True, expires_at__gt=now)
            .filter(stale)
            .order_by("created_at")
            .values_list("pk", flat=True)
        )

    def fields(self) -> dict:
        """The decrypted message: subject, body, from_email, to."""
        return json.loads(_login_mail_cipher().decrypt(bytes(self.message)))

    def mark_sent(self) -> None:
        """Sent: the secret is wiped from the row at once."""
        LoginMail.objects.filter(pk=self.pk).update(
            sent_at=dj_timezone.now(), message=b"", claimed_at=None, last_error=""
        )

    def release(self, error: str) -> None:
        """Sending failed: free the row for the next try (the task's retry or the sweep)."""
        LoginMail.objects.filter(pk=self.pk).update(claimed_at=None, last_error=error[:500])

    @classmethod
    def purge_expired(cls) -> int:
        """Delete messages whose link has expired, sent or not; they can log nobody in."""
        deleted, _ = cls.objects.filter(expires_at__lte=dj_timezone.now()).delete()
        return deleted
