"""Caches that keep the inbound path at one Dataverse request per message.

:class:`ConfigurationCache` holds the active configurations (by sender number) and blocked
numbers in memory for a short time-to-live, read through a
:class:`~connector.ports.ConfigurationDirectory`; :class:`TeamCache` a team's members. The
conversation sessions' mirror is :mod:`connector.state.session_mirror`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from connector.domain.model import Configuration, Keyword
from connector.log_config import get_logger
from connector.ports import ConfigurationDirectory

log = get_logger(__name__)


class ConfigurationCache:
    """Active configurations by sender number and blocked numbers, refreshed after ``ttl``."""

    def __init__(
        self,
        directory: ConfigurationDirectory,
        *,
        ttl: float = 60.0,
        miss_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._by_sender: dict[str, Configuration] = {}
        self._blocked: dict[str, set[str]] = {}
        self._keywords: tuple[Keyword, ...] = ()
        self._refreshing = threading.Event()
        self._generation = 0

    def _fresh(self) -> None:
        now = self._clock()
        loaded = self._loaded_at
        if loaded is not None and (now - loaded < self.ttl or self._refreshing.is_set()):
            return  # fresh, or a background refresh is under way: the copy in hand
        self._load(now)

    def _load(self, now: float) -> None:
        generation = self._generation
        configurations = self.directory.active_configurations()
        blocked = self.directory.blocked_numbers()
        keywords = tuple(self.directory.keywords())
        with self._lock:
            if generation != self._generation:
                return  # invalidated while this read ran: what it read may predate the change
            self._by_sender = {c.sender_number: c for c in configurations if c.active}
            self._blocked = {k: set(v) for k, v in blocked.items()}
            self._keywords = keywords
            self._loaded_at = now

    def ready(self) -> bool:
        """Whether reads answer from memory now, so an event loop may read without waiting
        for Dataverse: once loaded, a stale copy is refreshed by a background thread and
        reads get the stale copy meanwhile (a miss on an unknown sender still loads)."""
        if self._loaded_at is None:
            return False
        self._refresh_if_stale()
        return True

    def by_sender(self, number: str) -> Configuration | None:
        """The active configuration of sender ``number`` (E.164), refreshing if stale."""
        self._fresh()
        found = self._by_sender.get(number)
        loaded = self._loaded_at
        if found is None and loaded is not None and self._clock() - loaded >= self.miss_ttl:
            self.invalidate()  # a configuration added since the last load: look once more
            self._fresh()
            found = self._by_sender.get(number)
        return found

    def is_blocked(self, configuration_id: str, phone: str) -> bool:
        """Whether ``phone`` is on the configuration's blocked list."""
        self._fresh()
        return phone in self._blocked.get(configuration_id, set())

    def keywords_for(self, configuration_id: str) -> Sequence[Keyword]:
        """The active admin keywords of ``configuration_id`` and those of every sender."""
        self._fresh()
        own = configuration_id.lower()
        return [
            k
            for k in self._keywords
            if k.active and (k.configuration_id or "").lower() in ("", own)
        ]

    def note_blocked(self, configuration_id: str, phone: str) -> None:
        """Record a block made by this process at once (others see it after ``ttl``)."""
        with self._lock:
            self._blocked.setdefault(configuration_id, set()).add(phone)

    def invalidate(self) -> None:
        """Forget everything: the next read loads again (a load already under way is not
        kept: it may have read before the change that made the caller invalidate)."""
        with self._lock:
            self._loaded_at = None
            self._generation += 1

    def snapshot(self) -> Mapping[str, Configuration]:
        """The configurations by sender number (after a refresh if stale)."""
        self._fresh()
        return dict(self._by_sender)

    def snapshot_nowait(self) -> list[Configuration]:
        """The configurations without waiting for Dataverse once loaded (the webhook path):
        a stale copy is returned while a background thread refreshes it."""
        if self._loaded_at is None:
            self._fresh()
        else:
            self._refresh_if_stale()
        return list(self._by_sender.values())

    def _refresh_if_stale(self) -> None:
        loaded = self._loaded_at
        if loaded is None or self._clock() - loaded < self.ttl:
            return
        with self._lock:
            if self._refreshing.is_set():
                return
            self._refreshing.set()
        threading.Thread(target=self._refresh_in_background, daemon=True).start()

    def _refresh_in_background(self) -> None:
        try:
            self._load(self._clock())
        except Exception as exc:  # the stale copy stays; the next call tries again
            log.warning("configuration_cache.refresh_failed", error=type(exc).__name__)
        finally:
            self._refreshing.clear()


class TeamCache:
    """Members of a team, read through ``fetch`` at most once per ``ttl`` seconds."""

    def __init__(
        self,
        fetch: Callable[[str], frozenset[str]],
        *,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def __call__(self, team_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._members.get(team_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        members = self._fetch(team_id)
        with self._lock:
            self._members[team_id] = (now, members)
        return members
