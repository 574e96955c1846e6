"""Feed sources: the curated defaults, a TOML config file, and sources admins add at run time.

All of them live in one table (``delivery_sources``) together with their health, so the poller,
``threatbot sources`` and the chat ``sources`` command read the same truth: when each source last
worked, what went wrong last, and why it was disabled. The policy of *when* a source counts as
failing or gets disabled is the poller's (``bot.poller``); this module only keeps the books.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.outbox import ensure_schema
from bot.services import SourceStatus
from retrieval.database import Database
from retrieval.fetch import redact_url, static_host_problem

__all__ = [
    "DEFAULT_INTERVAL",
    "FAILING_AFTER",
    "Health",
    "Source",
    "SourceBook",
    "SourceConfigError",
    "SourceState",
    "default_sources",
    "load_sources",
    "parse_interval",
]

#: Poll interval of a source that does not state one.
DEFAULT_INTERVAL = 30 * 60
#: Shortest interval accepted: feeds are not chat, and their servers deserve restraint.
MIN_INTERVAL = 60
#: Consecutive failures after which a source shows as "failing" (the poller may disable it later).
FAILING_AFTER = 2


class SourceConfigError(ConfigError):
    """A source definition that cannot be used; the message says which one and why."""


class Health(StrEnum):
    NEW = "new"
    OK = "ok"
    FAILING = "failing"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Source:
    """What to poll and how often."""

    name: str
    url: str
    kind: str = "feed"
    interval_seconds: int = DEFAULT_INTERVAL
    full_articles: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class SourceState:
    """A source as stored: its definition plus the poller's bookkeeping (times are POSIX seconds)."""

    source: Source
    origin: str  # "default" | "config" | "admin"
    added_by: str | None = None
    failures: int = 0
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    disabled_reason: str | None = None
    next_due: float = 0.0
    min_interval: float | None = None

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def health(self) -> Health:
        if not self.source.enabled:
            return Health.DISABLED
        if self.failures >= FAILING_AFTER:
            return Health.FAILING
        if self.last_success is None:  # never worked (or not since an admin re-enabled it)
            return Health.FAILING if self.failures else Health.NEW
        return Health.OK

    def status(self) -> SourceStatus:
        return SourceStatus(
            name=self.source.name,
            url=redact_url(self.source.url),  # listed in chat and on the console: never a password
            kind=self.source.kind,
            enabled=self.source.enabled,
            health=self.health.value,
            interval_seconds=self.source.interval_seconds,
            full_articles=self.source.full_articles,
            last_success=_when(self.last_success),
            last_error=self.last_error,
            disabled_reason=self.disabled_reason,
        )


# -- configuration files -----------------------------------------------------------------------------

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: str | int | float) -> int:
    """Seconds from ``900``, ``"90s"``, ``"15m"``, ``"1h"`` or ``"1d"``; at least :data:`MIN_INTERVAL`."""
    if isinstance(value, bool):
        raise SourceConfigError(f"interval {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _INTERVAL.match(value)
        if not match:
            raise SourceConfigError(f"interval {value!r} is not a duration like 90s, 15m, 1h or 1d")
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds < MIN_INTERVAL:
        raise SourceConfigError(f"interval {value!r} is shorter than the minimum of {MIN_INTERVAL}s")
    return int(seconds)


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise SourceConfigError(f"{url!r} is not an http(s) URL")
    return url


def source_from_mapping(data: Mapping[str, Any], *, where: str = "source") -> Source:
    """A :class:`Source` from one ``[[sources]]`` table (unknown keys are an error: typos should not pass)."""
    known = {"name", "url", "kind", "interval", "interval_seconds", "full_articles", "enabled"}
    unknown = set(data) - known
    if unknown:
        raise SourceConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if not data.get("url"):
        raise SourceConfigError(f"{where}: a source needs a url")
    url = _check_url(str(data["url"]))
    interval = data.get("interval", data.get("interval_seconds", DEFAULT_INTERVAL))
    return Source(
        name=str(data.get("name") or name_from_url(url)).strip(),
        url=url,
        kind=str(data.get("kind") or "feed").strip().lower(),
        interval_seconds=parse_interval(interval),
        full_articles=bool(data.get("full_articles", False)),
        enabled=bool(data.get("enabled", True)),
    )


def load_sources(text: str, *, origin: str = "config") -> list[Source]:
    """Sources from TOML text holding ``[[sources]]`` tables; names and URLs must be unique."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SourceConfigError(f"{origin}: not valid TOML ({error})") from error
    tables = document.get("sources", [])
    if not isinstance(tables, list):
        raise SourceConfigError(f"{origin}: `sources` must be an array of tables ([[sources]])")
    out: list[Source] = []
    names: set[str] = set()
    urls: set[str] = set()
    for number, table in enumerate(tables, 1):
        source = source_from_mapping(table, where=f"{origin}: source #{number}")
        if source.name.lower() in names or source.url in urls:
            raise SourceConfigError(f"{origin}: source #{number} ({source.name}) repeats a name or URL")
        names.add(source.name.lower())
        urls.add(source.url)
        out.append(source)
    return out


def default_sources() -> list[Source]:
    """The curated list shipped in ``bot/data/default_sources.toml``."""
    text = resources.files("bot").joinpath("data/default_sources.toml").read_text(encoding="utf-8")
    return load_sources(text, origin="default_sources.toml")


def name_from_url(url: str) -> str:
    host = (urlsplit(url).hostname or url).lower()
    return host[4:] if host.startswith("www.") else host


# -- the table ----------------------------------------------------------------------------------------


class SourceBook:
    """The sources table: definitions, run-time additions and health. Implements ``SourceRegistry``."""

    def __init__(self, db: Database, *, clock=time.time, allow_private_urls: bool = False) -> None:
        self.db = db
        self.clock = clock
        #: Whether ``add_source`` accepts private and loopback addresses (tests and lab setups opt in).
        self.allow_private_urls = allow_private_urls
        ensure_schema(db)

    # -- setting up -------------------------------------------------------------------------------

    def seed_defaults(self, sources: Iterable[Source] | None = None) -> int:
        """Give a new install the curated sources, once: removing them later does not bring them back."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM delivery_meta WHERE key = 'defaults_seeded'").fetchone():
                return 0
            added = sum(self._insert(conn, s, origin="default", added_by=None) for s in sources or default_sources())
            conn.execute("INSERT INTO delivery_meta (key, value) VALUES ('defaults_seeded', ?)", (str(self.clock()),))
        return added

    def sync(self, sources: Iterable[Source], *, origin: str = "config") -> int:
        """Make the table agree with a config file: add what is missing, update what the file states.

        Health is kept; a source the file enables is not re-enabled if the poller disabled it (an
        operator clears that with ``threatbot sources enable``).
        """
        changed = 0
        with self.db.transaction() as conn:
            for source in sources:
                row = conn.execute(
                    "SELECT name, disabled_reason FROM delivery_sources WHERE url = ? OR name = ?",
                    (source.url, source.name),
                ).fetchone()
                if row is None:
                    changed += self._insert(conn, source, origin=origin, added_by=None)
                    continue
                enabled = source.enabled and row["disabled_reason"] is None
                changed += conn.execute(
                    "UPDATE delivery_sources SET name = ?, url = ?, kind = ?, interval_seconds = ?, full_articles = ?, "
                    "enabled = ? WHERE name = ?",
                    (
                        source.name,
                        source.url,
                        source.kind,
                        source.interval_seconds,
                        int(source.full_articles),
                        int(enabled),
                        row["name"],
                    ),
                ).rowcount
        return changed

    def _insert(self, conn, source: Source, *, origin: str, added_by: str | None) -> int:
        return conn.execute(
            "INSERT OR IGNORE INTO delivery_sources (name, url, kind, interval_seconds, full_articles, enabled, "
            "origin, added_by, added_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                source.name,
                source.url,
                source.kind,
                source.interval_seconds,
                int(source.full_articles),
                int(source.enabled),
                origin,
                added_by,
                self.clock(),
            ),
        ).rowcount

    # -- SourceRegistry -----------------------------------------------------------------------------

    def list_sources(self) -> list[SourceStatus]:
        return [state.status() for state in self.states()]

    def add_source(
        self,
        url: str,
        *,
        added_by: str,
        name: str | None = None,
        kind: str = "feed",
        interval_seconds: int = DEFAULT_INTERVAL,
        full_articles: bool = False,
    ) -> SourceStatus:
        """Add a source at run time (chat or CLI); a URL already known returns the existing source."""
        try:
            url = _check_url(url)
        except SourceConfigError as error:
            raise ValueError(str(error).replace(url, redact_url(url))) from None
        problem = None if self.allow_private_urls else static_host_problem(urlsplit(url).hostname or "")
        if problem:  # names are vetted again, by address, at every fetch
            raise ValueError(f"refusing {redact_url(url)}: {problem} (not a public address)")
        interval_seconds = parse_interval(interval_seconds)
        existing = self.get(url)
        if existing is not None:
            return existing.status()
        base = (name or name_from_url(url)).strip() or name_from_url(url)
        with self.db.transaction() as conn:
            candidate, number = base, 1
            while conn.execute("SELECT 1 FROM delivery_sources WHERE name = ?", (candidate,)).fetchone():
                number += 1
                candidate = f"{base} ({number})"
            source = Source(candidate, url, kind, interval_seconds, full_articles, True)
            self._insert(conn, source, origin="admin", added_by=added_by)
        state = self.get(candidate)
        assert state is not None
        return state.status()

    # -- reading ----------------------------------------------------------------------------------

    def states(self) -> list[SourceState]:
        return [_state(r) for r in self.db.query("SELECT * FROM delivery_sources ORDER BY lower(name)")]

    def get(self, name_or_url: str) -> SourceState | None:
        rows = self.db.query(
            "SELECT * FROM delivery_sources WHERE name = ? OR url = ? OR lower(name) = lower(?) LIMIT 1",
            (name_or_url, name_or_url, name_or_url),
        )
        return _state(rows[0]) if rows else None

    def due(self, now: float | None = None) -> list[SourceState]:
        """Enabled sources whose next poll time has come, most overdue first."""
        rows = self.db.query(
            "SELECT * FROM delivery_sources WHERE enabled = 1 AND next_due <= ? ORDER BY next_due, name",
            (self.clock() if now is None else now,),
        )
        return [_state(r) for r in rows]

    def next_due(self) -> float | None:
        return self.db.query("SELECT min(next_due) FROM delivery_sources WHERE enabled = 1")[0][0]

    # -- admin ------------------------------------------------------------------------------------

    def set_enabled(self, name_or_url: str, enabled: bool, *, reason: str | None = None) -> SourceState:
        """Enable (clearing failures and the disabled reason, due at once) or disable with a reason."""
        state = self.get(name_or_url)
        if state is None:
            raise KeyError(name_or_url)
        with self.db.transaction() as conn:
            if enabled:
                conn.execute(
                    "UPDATE delivery_sources SET enabled = 1, failures = 0, disabled_reason = NULL, next_due = 0 "
                    "WHERE name = ?",
                    (state.name,),
                )
            else:
                conn.execute(
                    "UPDATE delivery_sources SET enabled = 0, disabled_reason = ? WHERE name = ?",
                    (reason or "disabled by an admin", state.name),
                )
        updated = self.get(state.name)
        assert updated is not None
        return updated

    def remove(self, name_or_url: str) -> bool:
        state = self.get(name_or_url)
        if state is None:
            return False
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM delivery_sources WHERE name = ?", (state.name,))
        return True

    # -- the poller's bookkeeping -----------------------------------------------------------------

    def record_success(self, name: str, *, next_due: float, min_interval: float | None, at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_sources SET failures = 0, last_attempt = ?, last_success = ?, next_due = ?, "
                "min_interval = ? WHERE name = ?",
                (at, at, next_due, min_interval, name),
            )

    def record_failure(
        self, name: str, *, error: str, next_due: float, at: float, disable_reason: str | None = None
    ) -> SourceState:
        """Count a failure; with ``disable_reason`` the source is switched off until an admin enables it."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_sources SET failures = failures + 1, last_attempt = ?, last_error = ?, "
                "last_error_at = ?, next_due = ? WHERE name = ?",
                (at, error[:500], at, next_due, name),
            )
            if disable_reason:
                conn.execute(
                    "UPDATE delivery_sources SET enabled = 0, disabled_reason = ? WHERE name = ?",
                    (disable_reason[:500], name),
                )
        state = self.get(name)
        assert state is not None
        return state


def _state(row) -> SourceState:
    return SourceState(
        source=Source(
            name=row["name"],
            url=row["url"],
            kind=row["kind"],
            interval_seconds=row["interval_seconds"],
            full_articles=bool(row["full_articles"]),
            enabled=bool(row["enabled"]),
        ),
        origin=row["origin"],
        added_by=row["added_by"],
        failures=row["failures"],
        last_attempt=row["last_attempt"],
        last_success=row["last_success"],
        last_error=row["last_error"],
        disabled_reason=row["disabled_reason"],
        next_due=row["next_due"],
        min_interval=row["min_interval"],
    )


def _when(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
