"""Runs the pinned ccusage for the report kinds the server ingests, and finds the data folders.

ccusage does all the parsing and pricing; this module only builds command lines, runs them with
a timeout, and turns every way they can fail into one readable line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from claude_telemetry import first_activity
from claude_telemetry.config import CCUSAGE_ENV, DEFAULT_CCUSAGE, Config
from claude_telemetry.native import Resolution, find_native_binary
from claude_telemetry.report_cache import (
    OTHER_AGENTS_MAX_AGE_SECONDS,
    ReportCache,
    report_key,
    tree_fingerprint,
)

log = logging.getLogger(__name__)

# Envelope key -> ccusage arguments. Order matters only for the progress display.
REPORT_KINDS: dict[str, list[str]] = {
    "claude_daily_instances": ["claude", "daily", "--json", "--instances"],
    "claude_session": ["claude", "session", "--json"],
    "blocks_hourly": ["blocks", "--json", "--session-length", "1"],
    "daily_by_agent": ["daily", "--json", "--by-agent"],
}
CLAUDE_ONLY_KINDS = ("claude_daily_instances", "claude_session", "blocks_hourly")
# The top-level key every good answer of that kind has; anything else is not a ccusage report.
_EXPECTED_KEY = {
    "claude_daily_instances": "projects",
    "claude_session": "sessions",
    "blocks_hourly": "blocks",
    "daily_by_agent": "daily",
}
DOCTOR_HINT = "Run `claude-telemetry doctor` for advice."
# Sent next to blocks_hourly: when each recent hour's first entry was (see hour_first_activity).
FIRST_ACTIVITY_KIND = "hour_first_activity"
# ccusage processes at once: each is single-threaded; more than a few only queue for cores.
MAX_PARALLEL = 4
_UNSET: Any = object()  # "not looked up yet", as opposed to None ("could not be read")


def _is_report(kind: str, data: dict[str, Any]) -> bool:
    """Is `data` a ccusage answer of this kind? With no usage yet (a fresh Claude Code
    install), `claude daily --instances` answers the plain `{"daily": [], "totals": …}`:
    an empty report, sent as it is (the server reads both shapes)."""
    if _EXPECTED_KEY[kind] in data:
        return True
    return kind == "claude_daily_instances" and data.get("daily") == []


class CcusageError(Exception):
    """ccusage could not produce a report; the message is one line for the user."""


def ccusage_command_line(config: Config | None) -> str:
    return (
        os.environ.get(CCUSAGE_ENV, "").strip()
        or (config.ccusage_command.strip() if config else "")
        or DEFAULT_CCUSAGE
    )


def ccusage_argv(config: Config | None) -> list[str]:
    line = ccusage_command_line(config)
    try:
        argv = shlex.split(line, posix=os.name != "nt")
    except ValueError as exc:
        raise CcusageError(f"The ccusage command {line!r} cannot be parsed: {exc}.") from None
    if os.name == "nt":  # pragma: no cover - Windows keeps the quotes in non-POSIX mode
        argv = [a[1:-1] if len(a) > 1 and a[0] == a[-1] == '"' else a for a in argv]
    if not argv:
        raise CcusageError("The ccusage command is empty.")
    found = shutil.which(argv[0])
    if found is None:
        what = "npx (part of Node.js)" if Path(argv[0]).name.startswith("npx") else argv[0]
        raise CcusageError(
            f"Cannot find {what} to run ccusage. Install Node.js 20+ or set "
            f"{CCUSAGE_ENV} to a ccusage command line. {DOCTOR_HINT}"
        )
    return [found, *argv[1:]]


@dataclass
class ClaudeDirs:
    """Where ccusage will look for Claude Code transcripts, and which of those exist."""

    from_env: bool
    candidates: list[Path]
    valid: list[Path] = field(default_factory=list)  # each a folder that contains projects/

    @property
    def missing(self) -> list[Path]:
        return [p for p in self.candidates if p not in self.valid]

    def projects_dirs(self) -> list[Path]:
        return [p / "projects" for p in self.valid]


def _has_projects(path: Path) -> Path | None:
    if (path / "projects").is_dir():
        return path
    # ccusage also accepts the projects/ folder itself.
    if path.name == "projects" and path.is_dir():
        return path.parent
    return None


def claude_dirs(env: dict[str, str] | None = None) -> ClaudeDirs:
    env = os.environ if env is None else env
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    home = Path(env.get("HOME") or Path.home())
    if configured:
        candidates = [Path(p.strip()).expanduser() for p in configured.split(",") if p.strip()]
        result = ClaudeDirs(from_env=True, candidates=candidates)
    else:
        xdg = env.get("XDG_CONFIG_HOME", "").strip()
        xdg_claude = Path(xdg) / "claude" if xdg else home / ".config" / "claude"
        result = ClaudeDirs(from_env=False, candidates=[xdg_claude, home / ".claude"])
    for path in result.candidates:
        found = _has_projects(path)
        if found is not None and found not in result.valid:
            result.valid.append(found)
    return result


def codex_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get("CODEX_HOME", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(env.get("HOME") or Path.home()) / ".codex"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    # npx must never stop to ask, nag about updates or print funding notes into our logs.
    env.setdefault("npm_config_yes", "true")
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    return env


@dataclass
class Runner:
    config: Config | None
    timezone: str = "UTC"
    workdir: Path | None = None  # a folder without .ccusage/ so no project config is picked up
    progress: Callable[[str, int, int], None] | None = None
    empty_claude_dir: Path | None = None  # stands in for an unusable CLAUDE_CONFIG_DIR
    # Where the resolved command is remembered between runs (the agent home); None: not kept.
    cache_dir: Path | None = None
    # Run the npm launcher's native binary directly (see native.py); False runs the command
    # line exactly as configured.
    prefer_native: bool = True
    _resolution: Resolution | None = field(default=None, init=False)
    # The environment of the session look-ups: run_all's log view, when it reads one.
    _lookup_env: dict[str, str] | None = field(default=None, init=False)
    # The ccusage processes running now (from any thread), for stop_running.
    _running: set[subprocess.Popen] = field(default_factory=set, init=False)
    _running_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def resolution(self) -> Resolution:
        if self._resolution is None:
            resolution = Resolution(self.cache_dir, ccusage_command_line(self.config))
            if resolution.argv is None:
                base = ccusage_argv(self.config)
                native = find_native_binary(base) if self.prefer_native else None
                if native is not None:
                    resolution.remember([str(native)], native)
                else:
                    # A single program keeps its version until the file changes.
                    resolution.remember(base, Path(base[0]) if len(base) == 1 else None)
            self._resolution = resolution
        return self._resolution

    @property
    def argv(self) -> list[str]:
        argv = self.resolution.argv
        assert argv is not None
        return argv

    @property
    def native(self) -> bool:
        """Does this runner start ccusage's native binary (no Node)?"""
        return find_native_binary(ccusage_argv(self.config)) == Path(self.argv[0])

    @property
    def timeout(self) -> int:
        return self.config.ccusage_timeout_seconds if self.config else 600

    @property
    def offline(self) -> bool:
        return self.config.ccusage_offline if self.config else True

    def version(self) -> str:
        """ccusage's version; remembered for the same binary, so usually no process starts."""
        known = self.resolution.version
        if known:
            return known
        out = self._run(["--version"], "--version")
        text = out.decode("utf-8", "replace").strip()
        # "ccusage 20.0.24" (or a bare version from other wrappers)
        version = text.split()[-1] if text else ""
        if not version or not version[0].isdigit():
            raise CcusageError(
                f"`ccusage --version` printed {text[:80]!r}, not a version. {DOCTOR_HINT}"
            )
        self.resolution.remember_version(version)
        return version

    def report_args(self, kind: str, since: date | None) -> list[str]:
        args = list(REPORT_KINDS[kind])
        if self.offline:
            args.append("--offline")
        args += ["--timezone", self.timezone]
        if since is not None:
            args += ["--since", since.strftime("%Y%m%d")]
        return args

    def run_report(self, kind: str, since: date | None, env_overrides=None) -> dict[str, Any]:
        label = " ".join(a for a in REPORT_KINDS[kind][:2] if not a.startswith("-"))
        out = self._run(self.report_args(kind, since), label, env_overrides)
        try:
            data = json.loads(out)
        except ValueError:
            raise CcusageError(
                f"ccusage {label} printed something that is not JSON "
                f"({len(out)} bytes). {DOCTOR_HINT}"
            ) from None
        if not isinstance(data, dict) or not _is_report(kind, data):
            raise CcusageError(
                f"ccusage {label} answered JSON without {_EXPECTED_KEY[kind]!r}; "
                f"is it ccusage 20? {DOCTOR_HINT}"
            )
        return data

    def run_all(
        self,
        since: date | None,
        dirs: ClaudeDirs | None = None,
        claude_config_dir: str | None = None,
        cache: ReportCache | None = None,
        variant: str = "",
        claude_fingerprint: str | None = None,
        view: str | None = None,
        activity: first_activity.Snapshot | None = None,
    ) -> dict[str, Any]:
        """Every report kind, or CcusageError: never a subset that looks complete.

        The kinds run at the same time (each ccusage is one process on one core). With a
        `cache`, a kind whose inputs are unchanged since its stored copy is not run again
        (report_cache). `claude_config_dir` points ccusage at other Claude folders
        (request_keys' copies without other machines' requests); `variant` then names what
        was left out, so a copy's reports never stand in for the full logs' or another copy's.
        `claude_fingerprint` is tree_fingerprint of the Claude projects folders when the
        caller has just taken it (it is taken here otherwise). `view` is log_view's
        CLAUDE_CONFIG_DIR of the recent transcripts, which give the same reports for `since`:
        every report and session look-up then reads it (not with `claude_config_dir`).
        `activity` is what the logs were as the caller started (first_activity.Snapshot, taken
        before `view` was made): with it, the last look-up of first entries is reused when
        the lines appended since cannot change it, and no session is looked up.

        `daily --by-agent` is made again only when the other agents' logs changed (Codex's
        folder; the rest by age, OTHER_AGENTS_MAX_AGE_SECONDS), not when only Claude Code's
        did: the server reads every agent from it but Claude (whose figures come from the
        per-project report, usage/ingest/parsers/ccusage_v20.parse_daily_by_agent), and its
        other agents' rows do not depend on Claude's logs. A reused copy's Claude figures may
        be older than the Claude reports beside it; nothing reads them (summary.sent_usage
        takes Claude's from the per-project report too).
        """
        dirs = dirs or claude_dirs()
        kinds = list(REPORT_KINDS)
        overrides: dict[str, str] = {}
        self._lookup_env = None
        if claude_config_dir and dirs.valid:
            overrides["CLAUDE_CONFIG_DIR"] = claude_config_dir
        elif view and dirs.valid and since is not None:
            overrides["CLAUDE_CONFIG_DIR"] = view
            self._lookup_env = {"CLAUDE_CONFIG_DIR": view}
        if not dirs.valid:
            # No Claude data on this PC: the Claude reports are left out (not sent empty, which
            # would look like lost history), and the unified report still counts other agents.
            kinds = [k for k in kinds if k not in CLAUDE_ONLY_KINDS]
            if dirs.from_env:
                # ccusage exits 1 when CLAUDE_CONFIG_DIR has no valid folder, even for Codex.
                overrides["CLAUDE_CONFIG_DIR"] = str(self._empty_claude_dir())
        keys: dict[str, str] = {}
        reports: dict[str, Any] = {}
        if cache is not None:
            claude = claude_fingerprint or tree_fingerprint(dirs.projects_dirs())
            codex = tree_fingerprint([codex_dir()])
            for kind in kinds:
                inputs = [codex] if kind not in CLAUDE_ONLY_KINDS else [claude]
                keys[kind] = report_key(
                    kind, self.argv, self.version(), self.report_args(kind, since), inputs, variant
                )
                max_age = None if kind in CLAUDE_ONLY_KINDS else OTHER_AGENTS_MAX_AGE_SECONDS
                stored = cache.get(kind, keys[kind], max_age)
                if isinstance(stored, dict) and _is_report(kind, stored):
                    reports[kind] = stored
        todo = [k for k in kinds if k not in reports]
        answers: Future | None = None
        early: Future | None = None
        now = datetime.now(UTC)
        held = None
        if claude_config_dir or variant:
            activity = None  # the answer on a copy of the logs is not kept
        if (
            activity is not None
            and cache is not None
            and {"blocks_hourly", "claude_session"} <= set(kinds)
        ):
            basis = cache.get(first_activity.BASIS_KIND, self._basis_key())
            held = first_activity.reusable(basis, activity, first_activity.window_start(now))
        if todo:
            log.info(
                "running ccusage for %s (reusing %s%s)",
                todo,
                list(reports) or "nothing",
                "; first entries as last looked up" if held is not None else "",
            )
            with (
                ThreadPoolExecutor(
                    max_workers=MAX_PARALLEL + 1, thread_name_prefix="ccusage"
                ) as pool,
                self._interruptible(),
            ):
                if held is not None:
                    pass  # the last look-up still holds (first_activity): none is made
                elif "claude_session" in reports and "blocks_hourly" in todo:
                    answers = pool.submit(self.session_answers, reports["claude_session"])
                elif "claude_session" in todo and "blocks_hourly" in kinds and cache is not None:
                    # The sessions active lately are usually the ones the last report named
                    # (a new request mostly lands in a running session): look those up now,
                    # beside the reports, rather than after `claude session`. The fresh
                    # report then decides which answers count (session_answers' `known`).
                    guess = self.recent_session_ids(cache.latest("claude_session"))
                    if guess:
                        early = pool.submit(self.lookup_sessions, guess)

                def started(kind: str, report: dict[str, Any]) -> None:
                    nonlocal answers
                    if kind == "claude_session" and "blocks_hourly" in kinds and held is None:
                        # The recent sessions' entries need only this report: look them up
                        # while the other reports still run.
                        answers = pool.submit(self._answers_after, report, early)

                fresh = self._run_many(
                    [
                        (kind, lambda kind=kind: self.run_report(kind, since, overrides))
                        for kind in todo
                    ],
                    pool=pool,
                    on_result=started,
                )
                for kind, report in fresh.items():
                    reports[kind] = report
                    if cache is not None:
                        cache.put(kind, keys[kind], report)
                looked_up = answers.result() if answers is not None else _UNSET
        else:
            looked_up = _UNSET
        reports = {kind: reports[kind] for kind in kinds}
        if "blocks_hourly" in reports and "claude_session" in reports:
            firsts = self._first_activity(
                reports,
                keys,
                todo,
                cache,
                looked_up,
                held=held,
                activity=activity,
                dirs=dirs,
                now=now,
            )
            if firsts:  # nothing recent: no report, as from agents before this one
                reports[FIRST_ACTIVITY_KIND] = {"hours": firsts}
        if cache is not None:
            cache.save()
        return reports

    def _basis_key(self) -> str:
        """The report cache key of first_activity's Basis: this ccusage, which found it."""
        return report_key(first_activity.BASIS_KIND, self.argv, self.version())

    def _first_activity(
        self,
        reports: dict[str, Any],
        keys: dict[str, str],
        ran: list[str],
        cache: ReportCache | None,
        answers: Any = _UNSET,
        *,
        held: first_activity.Held | None = None,
        activity: first_activity.Snapshot | None = None,
        dirs: ClaudeDirs | None = None,
        now: datetime | None = None,
    ) -> dict[str, str] | None:
        """hour_first_activity, reused from the cache while the sessions and hours are the
        same (only the hours still inside the window are kept), else from `held` (the last
        look-up, still holding: first_activity) when the new hourly report names no other
        recent hour and nothing was appended to the logs (`dirs`) while ccusage ran, else
        looked up (`answers`, or now). With `activity` (the logs as the sync found them), a
        look-up's answer is kept as first_activity's Basis."""
        key = report_key(keys.get("blocks_hourly"), keys.get("claude_session"))
        now = now or datetime.now(UTC)
        start = first_activity.window_start(now)
        if cache is not None and not {"blocks_hourly", "claude_session"} & set(ran):
            stored = cache.get(FIRST_ACTIVITY_KIND, key)
            if isinstance(stored, dict):
                return {
                    start_time: first
                    for start_time, first in stored.items()
                    if isinstance(first, str) and (_instant(start_time) or _EPOCH) >= start
                }
        buckets = _recent_buckets(reports["blocks_hourly"], start)
        firsts = None
        if held is not None and activity is not None and dirs is not None:
            firsts = held.for_buckets(buckets, start)
            if firsts is not None and first_activity.written_since(
                dirs.projects_dirs(), start, activity.sizes
            ):
                firsts = None  # written to while ccusage read it: what it saw was not checked
            if firsts is None:
                log.info("first entries looked up: the logs changed beyond the last look-up")
        if firsts is None:
            firsts = self.hour_first_activity(
                reports["blocks_hourly"], reports["claude_session"], now=now, answers=answers
            )
        if cache is not None and firsts is not None:
            cache.put(FIRST_ACTIVITY_KIND, key, firsts)
            if activity is not None:
                basis = first_activity.make_basis(firsts, buckets, activity.sizes)
                cache.put(first_activity.BASIS_KIND, self._basis_key(), basis)
        return firsts

    def _run_many(
        self,
        jobs: list[tuple[str, Callable[[], Any]]],
        *,
        pool: ThreadPoolExecutor | None = None,
        on_result: Callable[[str, Any], None] | None = None,
    ) -> dict[str, Any]:
        """Run `jobs` ((label, call)) at the same time; their results by label, in order.

        Each call starts one ccusage process, so threads suffice (in `pool`, else a pool of
        their own). `on_result(label, result)` runs as each one succeeds. Every job finishes
        (or times out) before the first CcusageError is raised: no process is left behind.
        """
        if pool is None:
            workers = min(len(jobs), MAX_PARALLEL)
            with (
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccusage") as own,
                self._interruptible(),
            ):
                return self._run_many(jobs, pool=own, on_result=on_result)
        results: dict[str, Any] = {}
        errors: list[BaseException] = []
        futures = {pool.submit(call): label for label, call in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            label = futures[future]
            if self.progress:
                self.progress(label, done, len(jobs))
            try:
                results[label] = future.result()
            except Exception as exc:  # re-raised below, after every process ended
                errors.append(exc)
                continue
            if on_result is not None:
                on_result(label, results[label])
        if errors:
            raise errors[0]
        return {label: results[label] for label, _ in jobs}

    @staticmethod
    def recent_session_ids(sessions: Any, now: datetime | None = None) -> list[str]:
        """The ids of the sessions of a `claude session` report active in the last
        first_activity.HOURS hours, in report order without repeats; [] for anything else."""
        if not isinstance(sessions, dict) or not isinstance(sessions.get("sessions"), list):
            return []
        cutoff = first_activity.window_start(now or datetime.now(UTC))
        ids = [
            str(s["sessionId"])
            for s in sessions["sessions"]
            if isinstance(s, dict)
            and s.get("sessionId")
            and (_instant(s.get("lastActivity")) or cutoff) >= cutoff
        ]
        return list(dict.fromkeys(ids))

    def lookup_sessions(self, ids: list[str]) -> dict[str, Any] | None:
        """ccusage's `claude session --id … --json` for each of `ids`, at the same time
        ({id: answer}); None when one cannot be read."""

        def read_session(session_id: str) -> Any:
            args = ["claude", "session", "--json", "--id", session_id]
            if self.offline:
                args.append("--offline")
            return json.loads(self._run(args, "session --id", self._lookup_env))

        if not ids:
            return {}
        try:
            return self._run_many([(sid, lambda sid=sid: read_session(sid)) for sid in ids])
        except (CcusageError, ValueError):
            return None

    def session_answers(
        self,
        sessions: dict[str, Any],
        now: datetime | None = None,
        known: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """ccusage's `claude session --id … --json` for each session of the `claude session`
        report active in the last first_activity.HOURS hours ({id: answer}); None when one
        cannot be read. `known` holds answers already read from the same logs (looked up
        early): those sessions are not asked again, and answers for other ids are ignored."""
        ids = self.recent_session_ids(sessions, now)
        known = known or {}
        fresh = self.lookup_sessions([sid for sid in ids if sid not in known])
        if fresh is None:
            return None
        return {sid: known[sid] if sid in known else fresh[sid] for sid in ids}

    def _answers_after(
        self, sessions: dict[str, Any], early: Future | None
    ) -> dict[str, Any] | None:
        """session_answers for the fresh report, reusing what `early` (a lookup_sessions
        started before the report) read; a failed early lookup is simply asked again."""
        known = early.result() if early is not None else None
        return self.session_answers(sessions, known=known or None)

    def hour_first_activity(
        self,
        hourly: dict[str, Any],
        sessions: dict[str, Any],
        now: datetime | None = None,
        answers: Any = _UNSET,
    ) -> dict[str, str] | None:
        """{hourly bucket's startTime: its first entry's timestamp} for the recent hours.

        `blocks --session-length 1` floors each bucket to its hour, but ccusage's burn rate
        runs from a block's first entry. The entries' times come from ccusage itself
        (`claude session --id … --json`, for the sessions active in the last
        first_activity.HOURS hours); only the timestamps leave the machine. None when a
        session cannot be read: the server then counts from the hour's start, as it does for
        older agents, rather than from a first entry that may be too late. `answers` are
        session_answers already looked up (run_all starts them early).
        """
        cutoff = first_activity.window_start(now or datetime.now(UTC))
        buckets: list[tuple[datetime, datetime, str]] = []
        for block in _recent_blocks(hourly, cutoff):
            if not isinstance(block, dict) or block.get("isGap"):
                continue
            start, end = _instant(block.get("startTime")), _instant(block.get("actualEndTime"))
            if start is not None and end is not None and start >= cutoff:
                buckets.append((start, end, block["startTime"]))
        buckets.sort()
        if not buckets:
            return {}
        if answers is _UNSET:
            answers = self.session_answers(sessions, now)
        if answers is None:
            return None
        stamps: list[datetime] = []
        for data in answers.values():
            entries = data.get("entries") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                return None
            for entry in entries:
                moment = _instant(entry.get("timestamp")) if isinstance(entry, dict) else None
                if moment is not None and moment >= cutoff:
                    stamps.append(moment)
        stamps.sort()
        firsts: dict[str, str] = {}
        # The bucket just before the window may keep an entry stamped exactly at the window's
        # first hour: that entry is not the first bucket's first either.
        before = [
            _instant(block.get("actualEndTime"))
            for block in hourly.get("blocks") or []
            if isinstance(block, dict)
            and not block.get("isGap")
            and (_instant(block.get("startTime")) or cutoff) < cutoff
        ]
        previous_end: datetime | None = max((end for end in before if end), default=None)
        for start, end, key in buckets:
            # A bucket keeps an entry stamped exactly at the next hour; that entry is not the
            # next bucket's first.
            first = next(
                (
                    t
                    for t in stamps
                    if start <= t <= end and (previous_end is None or t > previous_end)
                ),
                None,
            )
            if first is not None:
                firsts[key] = _iso_ms(first)
            previous_end = end
        return firsts

    def _empty_claude_dir(self) -> Path:
        base = self.empty_claude_dir or (self.workdir or Path.cwd()) / "empty-claude"
        (base / "projects").mkdir(parents=True, exist_ok=True)
        return base

    def stop_running(self) -> None:
        """End every ccusage process this runner has running (with its process group); the
        threads waiting on them then see them fail."""
        with self._running_lock:
            running = list(self._running)
        for proc in running:
            _send_kill(proc)  # its own thread reads what is left and sees it fail

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Ctrl-C (or a stop) while waiting on ccusage's processes ends them, so the threads
        that wait on them end too and the command stops at once, not at their end or their
        timeout."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            self.stop_running()
            raise

    def _run(self, args: list[str], label: str, env_overrides=None) -> bytes:
        env = _child_env()
        env.update(env_overrides or {})
        argv = self.argv + args
        popen_kw: dict[str, Any] = {}
        if os.name == "posix":
            # Its own process group, so a timeout also stops the node process npx started.
            popen_kw["start_new_session"] = True
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.workdir,
                **popen_kw,
            )
        except OSError as exc:
            raise CcusageError(
                f"Cannot start ccusage ({argv[0]}): {exc.strerror}. {DOCTOR_HINT}"
            ) from None
        with self._running_lock:
            self._running.add(proc)
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise CcusageError(
                f"ccusage {label} did not finish within {self.timeout} s "
                f"(ccusage.timeout_seconds). {DOCTOR_HINT}"
            ) from None
        except BaseException:
            # Ctrl-C while this thread waits: the child runs in a session of its own, which
            # the terminal's signal does not reach, and would go on alone.
            _kill(proc)
            raise
        finally:
            with self._running_lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            raise CcusageError(
                f"ccusage {label} failed (exit {proc.returncode}): "
                f"{_last_line(err) or 'no error message'}. {DOCTOR_HINT}"
            )
        return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _recent_blocks(hourly: dict[str, Any], start: datetime) -> list[dict[str, Any]]:
    """The hourly report's buckets (no gaps) that start at `start` or later."""
    return [
        block
        for block in hourly.get("blocks") or []
        if isinstance(block, dict)
        and not block.get("isGap")
        and (_instant(block.get("startTime")) or _EPOCH) >= start
    ]


def _recent_buckets(hourly: dict[str, Any], start: datetime) -> list[str]:
    """The startTime of each of _recent_blocks."""
    return [str(block["startTime"]) for block in _recent_blocks(hourly, start)]


def _instant(value: Any) -> datetime | None:
    """ccusage's `2026-11-29T11:35:00.000Z` as an aware UTC datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _kill(proc: subprocess.Popen) -> None:
    """Kill `proc` with its process group and read what is left of its output."""
    _send_kill(proc)
    proc.communicate()


def _send_kill(proc: subprocess.Popen) -> None:
    """Kill `proc` with its process group, leaving its output to whoever waits on it."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= 300 else line[:297] + "..."
