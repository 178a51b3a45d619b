"""One sync: run ccusage, add new statusline readings, send the spool then the new envelope.

Nothing is acknowledged locally until the server has answered 2xx; anything the server could
not take now stays in the spool, so a run can stop at any point without losing data.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from claude_telemetry import first_activity, log_view
from claude_telemetry.ccusage import CcusageError, Runner, claude_dirs
from claude_telemetry.client import Ack, Client, SendError
from claude_telemetry.config import (
    Config,
    Home,
    load_state,
    load_token,
    save_config,
    save_state,
)
from claude_telemetry.envelope import build_envelope, decode, encode, fingerprint, summary
from claude_telemetry.fsutil import LockBusy, exclusive_lock
from claude_telemetry.projects import project_identity
from claude_telemetry.report_cache import ReportCache, report_key, tree_fingerprint
from claude_telemetry.request_keys import (
    OwnedKeys,
    scan,
    scan_counting,
    scan_start,
    without_requests,
)
from claude_telemetry.spool import Spool
from claude_telemetry.statusline import prune_sent_captures, read_new_captures
from claude_telemetry.summary import human_lines, sent_usage

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_KEPT = 75  # EX_TEMPFAIL: the data is safe in the spool and will be sent later
BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600
# Server errors (5xx) on one spooled report before newer reports go first: a report the server
# always fails on must not hold everything newer back. It stays and is tried after them.
SPOOL_ATTEMPTS_BEFORE_SKIP = 3
# The report cache's entry for the answer to the request keys (see _foreign_requests).
FOREIGN_KIND = "foreign_request_keys"


@dataclass
class Outcome:
    code: int
    message: str
    lines: list[str] = field(default_factory=list)  # printed before the message
    after: list[str] = field(default_factory=list)  # printed after it
    # The raw detail for `sync --verbose` / `--json`: window, report counts, the server's answer.
    detail: dict[str, Any] = field(default_factory=dict)


def synced_outcome(
    envelope: dict[str, Any], ack: Ack, server_url: str, lines: list[str]
) -> Outcome:
    """A successful sync in a person's words (summary.human_lines), with the raw counts kept
    in `detail`."""
    duplicate = " (already had it)" if ack.data.get("duplicate") else ""
    window = "full history" if envelope["full"] else f"since {envelope['since']}"
    human = human_lines(envelope, ack.data, server_url)
    return Outcome(
        EXIT_OK,
        human[0],
        lines,
        after=human[1:],
        detail={
            "window": window,
            "counts_text": f"Synced {window}: {_counts_text(ack)}{duplicate}.",
            "sent": sent_usage(envelope),
            "server": {
                k: v
                for k, v in ack.data.items()
                if k not in ("foreign_request_keys", "agent_status")
            },
        },
    )


def backoff_seconds(failures: int, retry_after: float | None = None, rng=random) -> float:
    """Exponential from one minute to six hours, with ±50 % jitter so machines spread out."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(0, failures - 1), BACKOFF_MAX_SECONDS)
    delay = base * rng.uniform(0.5, 1.5)
    return max(delay, retry_after or 0.0)


def plan_since(state: dict[str, Any], ccusage_version: str, overlap_days: int) -> date | None:
    """The first day of an incremental window, or None for the whole history."""
    if not state.get("full_acked"):
        return None
    # Another ccusage may price or count differently: recompute everything once.
    if state.get("ccusage_version") != ccusage_version:
        return None
    try:
        last_day = date.fromisoformat(state.get("last_day") or "")
    except ValueError:
        return None
    return last_day - timedelta(days=overlap_days)


def apply_ack(state: dict[str, Any], envelope: dict[str, Any], ack: Ack) -> None:
    data = ack.data
    sent_tz = envelope["machine"].get("timezone")
    server_tz = data.get("timezone")
    if isinstance(server_tz, str) and 0 < len(server_tz) <= 64:
        state["timezone"] = server_tz
    # A big report the server stored but could not process: it keeps it, yet the history is
    # not on the server, so the next sync sends the whole history again.
    failed = data.get("status") == "failed"
    if envelope.get("full") and envelope.get("reports") and not failed:
        state["full_acked"] = True
        state["ccusage_version"] = envelope["machine"].get("ccusage_version")
    if state.get("timezone") != sent_tz and envelope.get("reports"):
        # The team's days are cut in another timezone now: regroup everything once.
        state["full_acked"] = False
    last_day = data.get("last_day")
    if isinstance(last_day, str):
        try:
            date.fromisoformat(last_day)
        except ValueError:
            last_day = None
        if last_day and (not state.get("last_day") or last_day > state["last_day"]):
            state["last_day"] = last_day
    state["last_success_at"] = _now_iso()
    state["failures"] = 0
    state.pop("next_attempt_at", None)
    if isinstance(data.get("machine"), dict):
        state["machine"] = {k: data["machine"].get(k) for k in ("uuid", "name", "subscription")}


def adopt_copied_identity(
    home: Home, config: Config, state: dict[str, Any], ack: Ack
) -> str | None:
    """Take the machine UUID the server gave this agent folder when it was copied.

    The server tells a copied folder (same UUID, another PC or user) apart by its fingerprint
    and registers it as a machine of its own. The copied state belongs to the first machine,
    so it is reset: the next sync sends this PC's whole history. Returns what to tell the
    user, or None when nothing changed.
    """
    machine = ack.data.get("machine")
    if not isinstance(machine, dict) or not machine.get("copied_from"):
        return None
    new_uuid = machine.get("uuid")
    try:
        new_uuid = str(uuid.UUID(str(new_uuid)))
    except ValueError:
        return None
    if new_uuid == config.machine_uuid:
        return None
    old_uuid = config.machine_uuid
    config.machine_uuid = new_uuid
    save_config(home, config)
    kept = {k: state[k] for k in ("timezone",) if k in state}
    state.clear()
    state.update(kept)
    log.warning("agent folder copied from machine %s; now machine %s", old_uuid, new_uuid)
    return (
        f"This agent folder was copied from another machine ({old_uuid}); this PC now reports "
        f"as a machine of its own ({new_uuid}), and its next sync sends its whole history."
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _counts_text(ack: Ack) -> str:
    state = ack.data.get("status")
    if state == "received":
        # A big report: the server stored it and processes it in the background.
        return f"accepted; the server is still processing it (batch {ack.data.get('batch_id')})"
    if state == "failed":
        # Stored on the server, which keeps it to process again after a fix.
        return f"accepted, but the server could not process it: {ack.data.get('detail')}"
    counts = ack.data.get("counts")
    if not isinstance(counts, dict) or not counts:
        return "nothing new"
    parts = []
    kept = replaced = 0
    for kind, c in counts.items():
        if isinstance(c, dict):
            parts.append(
                f"{kind} +{c.get('created', 0)} ~{c.get('updated', 0)} ={c.get('unchanged', 0)}"
            )
            kept += int(c.get("kept") or 0)
            replaced += int(c.get("removed") or 0)
    if kept:
        parts.append(f"kept {kept} stored rows the logs no longer hold")
    if replaced:
        parts.append(f"replaced {replaced} rows regrouped by another timezone or project naming")
    return ", ".join(parts)


class Syncer:
    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        progress: Callable[[str], None] | None = None,
    ):
        self.home = home
        self.config = config
        self.progress = progress or (lambda text: None)
        self.spool = Spool(home.spool_dir, home.rejected_dir, config.spool_max_mb * 1024 * 1024)
        # One HTTP client for the whole sync (the request keys, the spool, the report and the
        # limits refresh after it): one TLS set-up, and for https one kept-alive connection.
        self._client: Client | None = None
        self._client_lock = threading.Lock()
        self._warming: threading.Thread | None = None
        # The member's limits status the server sent with the report's answer, if it did:
        # the limits refresh after the sync keeps it instead of asking again.
        self.agent_status: dict[str, Any] | None = None

    def client(self, token: str) -> Client:
        """The sync's HTTP client, made on first use (from any thread)."""
        with self._client_lock:
            if self._client is None:
                self._client = Client(self.config.server_url, token)
            return self._client

    @property
    def http(self) -> Any:
        """The sync's open claude_telemetry.http.Session, or None when it has not talked to
        the server."""
        return self._client.http if self._client is not None else None

    def warm_client(self, token: str) -> None:
        """Make the HTTP client in a thread of its own: importing http.client takes ~15 ms of
        CPU, and an https server's CA bundle 20-120 ms more, spent while ccusage's processes
        run instead of before them. client() waits for it."""
        if self._warming is not None or self._client is not None:
            return

        def make() -> None:
            try:
                self.client(token)
            except Exception as exc:  # client() is called again where it is needed, and fails there
                log.debug("HTTP client not made ahead: %s", exc)

        self._warming = threading.Thread(target=make, name="http-client", daemon=True)
        self._warming.start()

    def close(self) -> None:
        """Close the HTTP client, if one was made (after one being made ahead is ready)."""
        if self._warming is not None:
            self._warming.join()
            self._warming = None
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def run(
        self,
        *,
        full: bool = False,
        dry_run: bool = False,
        service: bool = False,
        output: Path | None = None,
        keep_client: bool = False,
    ) -> Outcome:
        """One sync. `keep_client` leaves the HTTP client open for the caller (the limits
        refresh after it; `http`), who then calls close()."""
        self.home.ensure()
        try:
            with exclusive_lock(self.home.lock_file):
                return self._run(full=full, dry_run=dry_run, service=service, output=output)
        except LockBusy:
            return Outcome(EXIT_OK, "Another sync is running on this machine; this one is skipped.")
        finally:
            if not keep_client:
                self.close()

    # --- steps ----------------------------------------------------------------------------

    def _run(self, *, full: bool, dry_run: bool, service: bool, output: Path | None) -> Outcome:
        state = load_state(self.home)
        self.spool.clean_stale_tmp()
        if service and not dry_run:
            waiting = state.get("next_attempt_at")
            if waiting and waiting > _now_iso():
                log.info("backing off until %s", waiting)
                return Outcome(
                    EXIT_OK, f"Backing off after failures; next attempt after {waiting}."
                )
        token = None if dry_run else load_token(self.home, self.config)
        try:
            envelope, offsets = self._build(state, full=full, token=token)
        except CcusageError as exc:
            # Nothing is sent: a report without one of its parts would look complete.
            log.error("ccusage failed: %s", exc)
            if not dry_run:
                state["last_sync"] = {"at": _now_iso(), "result": "failed", "message": str(exc)}
                save_state(self.home, state)
            return Outcome(EXIT_FAILED, str(exc))
        body = encode(envelope)
        log.info("reports ready: %s bytes gzip", f"{len(body):,}")
        if dry_run:
            return self._dry_run(envelope, body, output)
        assert token is not None
        outcome = self._send(self.client(token), state, envelope, body)
        outcome.detail.setdefault("bytes", len(body))
        state["captures"] = prune_sent_captures(self.home.captures_dir, offsets, datetime.now(UTC))
        state["last_sync"] = {
            "at": _now_iso(),
            "result": {EXIT_OK: "ok", EXIT_KEPT: "kept"}.get(outcome.code, "failed"),
            "message": outcome.message,
            "window": "full" if envelope["full"] else f"since {envelope['since']}",
            "bytes": len(body),
        }
        save_state(self.home, state)
        log.info("sync finished: %s", outcome.message)
        return outcome

    def _build(
        self, state: dict[str, Any], *, full: bool, token: str | None = None
    ) -> tuple[dict[str, Any], dict]:
        timezone = state.get("timezone") or "UTC"
        runner = Runner(
            self.config,
            timezone=timezone,
            workdir=self.home.root,
            progress=lambda kind, i, n: self.progress(f"Ran ccusage ({i}/{n}): {kind}"),
            cache_dir=self.home.root,
        )
        cache = ReportCache(self.home.root)
        self.progress("Checking ccusage")
        version = runner.version()
        since = None if full else plan_since(state, version, self.config.overlap_days)
        dirs = claude_dirs()
        if dirs.missing and dirs.from_env:
            log.warning("CLAUDE_CONFIG_DIR entries without projects/: %s", dirs.missing)
        log.info("running ccusage %s (%s, tz %s)", version, since or "full history", timezone)
        # Unchanged logs hold no request another machine could have reported first since the
        # last look: reuse its answer instead of hashing every request and asking again.
        fingerprint = tree_fingerprint(dirs.projects_dirs())
        foreign_key = report_key(
            fingerprint,
            since,
            self.config.server_url,
            self.config.machine_uuid,
        )
        stored = cache.get(FOREIGN_KIND, foreign_key) if token is not None else None
        reports = None
        if isinstance(stored, list):
            foreign: set[str] | None = {k for k in stored if isinstance(k, str)}
            if token is not None:
                self.warm_client(token)
        else:
            # Usually no other machine reported any of these requests: ccusage runs on the
            # logs as they are while the keys are sent, and runs again on a copy only when the
            # answer names some.
            # In a window, ccusage needs only the transcripts that can hold its lines; which
            # those are depends on the window's request keys, so they are hashed first (the
            # recent transcripts only). The whole history's are hashed beside ccusage.
            hours: dict[str, list[str]] | None = None
            view = None
            activity = None
            if since is not None and dirs.valid:
                self.progress("Hashing request keys")
                # The logs' sizes before anything reads them: the lines the request keys and
                # ccusage then see include everything up to them (first_activity).
                sizes = first_activity.snapshot(
                    dirs.projects_dirs(), first_activity.window_start(datetime.now(UTC))
                )
                hours, key_lines = scan_counting(dirs.projects_dirs(), since)
                activity = first_activity.Snapshot(sizes, key_lines, scan_start(since))
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-keys") as pool:
                # Asked before the view is made: the server works on the answer while this
                # process still has a core to spare, before ccusage's processes take both.
                asked = pool.submit(
                    self._foreign_requests, dirs, since, hours, version, timezone, token
                )
                try:
                    if hours is not None:
                        window_keys = {key for keys in hours.values() for key in keys}
                        view = log_view.prepare(self.home.root, dirs, since, window_keys)
                    reports = runner.run_all(
                        since,
                        dirs,
                        cache=cache,
                        claude_fingerprint=fingerprint,
                        view=view,
                        activity=activity,
                    )
                finally:
                    foreign = asked.result()
            if token is not None and foreign is not None:
                cache.put(FOREIGN_KIND, foreign_key, sorted(foreign))
                cache.save()
        if foreign:
            # ccusage reads a copy of the logs without the requests another machine reported.
            with tempfile.TemporaryDirectory(dir=self.home.root, prefix="logs-") as tmp:
                self.progress(f"Leaving out {len(foreign):,} requests another machine reported")
                reports = runner.run_all(
                    since,
                    dirs,
                    claude_config_dir=without_requests(dirs, foreign, Path(tmp)),
                    cache=cache,
                    variant=report_key(sorted(foreign)),
                    claude_fingerprint=fingerprint,
                )
        elif reports is None:
            reports = runner.run_all(since, dirs, cache=cache, claude_fingerprint=fingerprint)
        self.progress("Reading project folders")
        reports, projects = project_identity(
            reports,
            dirs.projects_dirs(),
            send_paths=self.config.send_project_paths,
            hash_names=self.config.hash_project_names,
            salt=self.config.hash_salt,
        )
        captures, offsets = read_new_captures(self.home.captures_dir, state.get("captures") or {})
        envelope = build_envelope(
            self.config,
            ccusage_version=version,
            timezone=timezone,
            since=since,
            reports=reports,
            statusline=captures,
            projects=projects,
        )
        return envelope, offsets

    def _foreign_requests(
        self,
        dirs,
        since: date | None,
        hours: dict[str, list[str]] | None,
        version: str,
        timezone: str,
        token: str | None,
    ) -> set[str] | None:
        """The keys of this machine's requests that another machine reported first.

        Sends the hashed request keys of the window (`hours`, request_keys.scan of `since`;
        hashed here when None) in a report of their own and reads the answer. Without a token
        (dry run), without Claude logs, or when the server cannot be asked now (None: not
        asked, so the answer is not remembered), nothing is left out.
        """
        if token is None:
            return set()
        # The sync's HTTP client, for these keys and the report after ccusage, is made here:
        # beside ccusage rather than before it (importing http.client takes ~8 ms of CPU).
        client = self.client(token)
        if not dirs.valid:
            return set()
        if hours is None:
            self.progress("Hashing request keys")
            hours = scan(dirs.projects_dirs(), since)
        # Keys the server confirmed as this machine's before are its own for good. The
        # fingerprint is in the scope: an agent folder copied to another PC or user becomes
        # a machine of its own, which owns none of them.
        owned = OwnedKeys(
            self.home.root,
            report_key(self.config.server_url, self.config.machine_uuid, fingerprint()),
        )
        asked = owned.unasked(hours)
        if not asked:
            return set()
        envelope = build_envelope(
            self.config,
            ccusage_version=version,
            timezone=timezone,
            since=None,
            reports={"request_keys": {"hours": asked}},
        )
        envelope["full"] = False  # keys only: it says nothing about which days are complete
        try:
            ack = client.ingest(encode(envelope))
        except SendError as exc:
            log.warning("request keys not sent (%s); nothing is left out this time", exc)
            return None
        keys = ack.data.get("foreign_request_keys")
        if not isinstance(keys, list):
            return None
        foreign = {k for k in keys if isinstance(k, str)}
        owned.confirm(asked, foreign, datetime.now(UTC))
        return foreign

    def _dry_run(self, envelope: dict, body: bytes, output: Path | None) -> Outcome:
        window = "the whole history" if envelope["full"] else f"days since {envelope['since']}"
        lines = [f"Would send {len(body):,} bytes (gzip) covering {window}:"]
        for kind, size, text in summary(envelope):
            lines.append(f"  {kind:<24} {size:>10,} bytes  {text}")
        lines.append(f"  projects: {len(envelope['projects'])}")
        if output:
            output.write_text(json.dumps(envelope, indent=2, ensure_ascii=False), "utf-8")
            lines.append(f"Envelope written to {output}")
        return Outcome(EXIT_OK, "Dry run: nothing sent.", lines)

    def _send(self, client: Client, state: dict, envelope: dict, body: bytes) -> Outcome:
        """Send the spool oldest first, then `body`; spooled reports that failed with a server
        error SPOOL_ATTEMPTS_BEFORE_SKIP times go after `body`, and never stop the run."""
        lines: list[str] = []
        entries = self.spool.entries()
        attempts: dict[str, int] = {
            name: count
            for name, count in (state.get("spool_attempts") or {}).items()
            if name in {e.path.name for e in entries}
        }
        state["spool_attempts"] = attempts
        stuck = [e for e in entries if attempts.get(e.path.name, 0) >= SPOOL_ATTEMPTS_BEFORE_SKIP]
        for entry in entries:
            if entry in stuck:
                continue
            try:
                self._send_spooled(client, state, entry, lines)
            except SendError as exc:
                if exc.status is None or exc.status < 500:
                    return self._keep(state, body, exc, lines)
                attempts[entry.path.name] = attempts.get(entry.path.name, 0) + 1
                if attempts[entry.path.name] < SPOOL_ATTEMPTS_BEFORE_SKIP:
                    return self._keep(state, body, exc, lines)
                stuck.append(entry)
                lines.append(
                    f"A spooled report failed {SPOOL_ATTEMPTS_BEFORE_SKIP} times on the server "
                    f"({exc}); newer reports go first and it is kept for later."
                )
                log.error("spooled %s keeps failing; newer reports go first", entry.path.name)
        self.progress(f"Sending {len(body):,} bytes")
        try:
            ack = client.ingest(body, include=("agent_status",))
        except SendError as exc:
            if exc.keep:
                return self._keep(state, body, exc, lines)
            rejected = self.spool.reject(body, self._reason(exc))
            log.error("report rejected: %s (kept in %s)", exc, rejected)
            return Outcome(EXIT_FAILED, f"{exc} The report is kept in {rejected}.", lines)
        apply_ack(state, envelope, ack)
        state["last_counts"] = ack.data.get("counts") or {}
        status = ack.data.get("agent_status")
        self.agent_status = status if isinstance(status, dict) and "decision" in status else None
        adopted = adopt_copied_identity(self.home, self.config, state, ack)
        if adopted:
            lines.append(adopted)
        for entry in stuck:
            # Once per run, after the newest report: a fix on the server lets it through.
            try:
                self._send_spooled(client, state, entry, lines)
            except SendError as exc:
                attempts[entry.path.name] = attempts.get(entry.path.name, 0) + 1
                lines.append(f"A spooled report that keeps failing is still kept: {exc}")
        return synced_outcome(envelope, ack, self.config.server_url, lines)

    def _send_spooled(self, client: Client, state: dict, entry, lines: list[str]) -> None:
        """Send one spooled report: acknowledged → removed; refused for its content (4xx) →
        moved to rejected/ with the reason. Raises SendError when it must stay in the spool."""
        self.progress(f"Sending spooled report {entry.path.name}")
        data = entry.read()
        try:
            ack = client.ingest(data)
        except SendError as exc:
            if exc.keep:
                raise
            self.spool.reject(data, self._reason(exc), source=entry)
            state["spool_attempts"].pop(entry.path.name, None)
            lines.append(f"A spooled report was refused and moved to rejected/: {exc}")
            log.error("spooled %s rejected: %s", entry.path.name, exc)
            return
        self.spool.remove(entry)
        state["spool_attempts"].pop(entry.path.name, None)
        try:
            apply_ack(state, decode(data), ack)
        except (OSError, ValueError, KeyError):
            log.warning("spooled %s acknowledged but unreadable", entry.path.name)
        save_state(self.home, state)
        lines.append(f"Sent a report kept from an earlier run ({_counts_text(ack)}).")
        log.info("spooled %s acknowledged", entry.path.name)

    def _keep(self, state: dict, body: bytes, exc: SendError, lines: list[str]) -> Outcome:
        entry, dropped = self.spool.add(body)
        for path in dropped:
            lines.append(
                f"Warning: the spool is over {self.config.spool_max_mb} MB; "
                f"dropped the oldest report {path.name}."
            )
        failures = int(state.get("failures") or 0) + 1
        delay = backoff_seconds(failures, exc.retry_after)
        state["failures"] = failures
        state["next_attempt_at"] = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(
            timespec="seconds"
        )
        log.warning("not sent (%s); kept %s; retry after %.0f s", exc, entry.path.name, delay)
        count = len(self.spool.entries())
        if exc.fatal:
            # Not "will retry": nothing gets through until a person fixes the set-up.
            return Outcome(
                EXIT_FAILED,
                f"{exc} Until then nothing is sent; the reports wait in the spool ({count}).",
                lines,
            )
        return Outcome(
            EXIT_KEPT,
            f"{exc} The report is kept ({count} waiting) and will be sent by the next sync.",
            lines,
        )

    @staticmethod
    def _reason(exc: SendError) -> dict[str, Any]:
        return {"at": _now_iso(), "status": exc.status, "error": str(exc), "errors": exc.errors}
