"""One sync: run ccusage, add new statusline readings, send the spool then the new envelope.

Nothing is acknowledged locally until the server has answered 2xx; anything the server could
not take now stays in the spool, so a run can stop at any point without losing data.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from claude_telemetry.ccusage import CcusageError, Runner, claude_dirs
from claude_telemetry.client import Ack, Client, SendError
from claude_telemetry.config import Config, Home, load_state, load_token, save_state
from claude_telemetry.envelope import build_envelope, decode, encode, summary
from claude_telemetry.fsutil import LockBusy, exclusive_lock
from claude_telemetry.projects import project_identity
from claude_telemetry.spool import Spool
from claude_telemetry.statusline import prune_sent_captures, read_new_captures

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_KEPT = 75  # EX_TEMPFAIL: the data is safe in the spool and will be sent later
BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600


@dataclass
class Outcome:
    code: int
    message: str
    lines: list[str] = field(default_factory=list)


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
    if envelope.get("full") and envelope.get("reports"):
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


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _counts_text(ack: Ack) -> str:
    counts = ack.data.get("counts")
    if not isinstance(counts, dict) or not counts:
        return "nothing new"
    parts = []
    for kind, c in counts.items():
        if isinstance(c, dict):
            parts.append(
                f"{kind} +{c.get('created', 0)} ~{c.get('updated', 0)} ={c.get('unchanged', 0)}"
            )
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

    def run(
        self,
        *,
        full: bool = False,
        dry_run: bool = False,
        service: bool = False,
        output: Path | None = None,
    ) -> Outcome:
        self.home.ensure()
        try:
            with exclusive_lock(self.home.lock_file):
                return self._run(full=full, dry_run=dry_run, service=service, output=output)
        except LockBusy:
            return Outcome(EXIT_OK, "Another sync is running on this machine; this one is skipped.")

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
            envelope, offsets = self._build(state, full=full)
        except CcusageError as exc:
            # Nothing is sent: a report without one of its parts would look complete.
            log.error("ccusage failed: %s", exc)
            if not dry_run:
                state["last_sync"] = {"at": _now_iso(), "result": "failed", "message": str(exc)}
                save_state(self.home, state)
            return Outcome(EXIT_FAILED, str(exc))
        body = encode(envelope)
        if dry_run:
            return self._dry_run(envelope, body, output)
        assert token is not None
        with Client(self.config.server_url, token) as client:
            outcome = self._send(client, state, envelope, body)
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

    def _build(self, state: dict[str, Any], *, full: bool) -> tuple[dict[str, Any], dict]:
        timezone = state.get("timezone") or "UTC"
        runner = Runner(
            self.config,
            timezone=timezone,
            workdir=self.home.root,
            progress=lambda kind, i, n: self.progress(f"Running ccusage ({i}/{n}): {kind}"),
        )
        self.progress("Checking ccusage")
        version = runner.version()
        since = None if full else plan_since(state, version, self.config.overlap_days)
        dirs = claude_dirs()
        if dirs.missing and dirs.from_env:
            log.warning("CLAUDE_CONFIG_DIR entries without projects/: %s", dirs.missing)
        log.info("running ccusage %s (%s, tz %s)", version, since or "full history", timezone)
        reports = runner.run_all(since, dirs)
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
        lines: list[str] = []
        for entry in self.spool.entries():
            self.progress(f"Sending spooled report {entry.path.name}")
            data = entry.read()
            try:
                ack = client.ingest(data)
            except SendError as exc:
                if exc.keep:
                    return self._keep(state, body, exc, lines)
                self.spool.reject(data, self._reason(exc), source=entry)
                lines.append(f"A spooled report was refused and moved to rejected/: {exc}")
                log.error("spooled %s rejected: %s", entry.path.name, exc)
                continue
            self.spool.remove(entry)
            try:
                apply_ack(state, decode(data), ack)
            except (OSError, ValueError, KeyError):
                log.warning("spooled %s acknowledged but unreadable", entry.path.name)
            save_state(self.home, state)
            lines.append(f"Sent a report kept from an earlier run ({_counts_text(ack)}).")
            log.info("spooled %s acknowledged", entry.path.name)
        self.progress(f"Sending {len(body):,} bytes")
        try:
            ack = client.ingest(body)
        except SendError as exc:
            if exc.keep:
                return self._keep(state, body, exc, lines)
            rejected = self.spool.reject(body, self._reason(exc))
            log.error("report rejected: %s (kept in %s)", exc, rejected)
            return Outcome(EXIT_FAILED, f"{exc} The report is kept in {rejected}.", lines)
        apply_ack(state, envelope, ack)
        state["last_counts"] = ack.data.get("counts") or {}
        duplicate = " (already had it)" if ack.data.get("duplicate") else ""
        window = "full history" if envelope["full"] else f"since {envelope['since']}"
        return Outcome(
            EXIT_OK,
            f"Synced {window}: {_counts_text(ack)}{duplicate}.",
            lines,
        )

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
        return Outcome(
            EXIT_KEPT,
            f"{exc} The report is kept ({count} waiting) and will be sent by the next sync.",
            lines,
        )

    @staticmethod
    def _reason(exc: SendError) -> dict[str, Any]:
        return {"at": _now_iso(), "status": exc.status, "error": str(exc), "errors": exc.errors}
