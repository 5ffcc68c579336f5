"""Which conversation session each inbound message of a claimed batch belongs to.

:class:`ConversationPlacer` is the part of the inbound use case
(:mod:`connector.services.inbound`) that reads, counts and stores sessions. A batch's sessions
are read at once (one read per configuration), each conversation's messages are placed on its
latest session in arrival order (the open session counts them; an expired one, or none, opens
a new session linked to the record the number resolves to), and every change is stored in one
write. The write is optimistic: a conversation whose pair another worker moved meanwhile is
read again and placed on its own (:meth:`ConversationPlacer.sessions_for`, retried on
conflict), so racing workers converge. A message that finds the team's wait idle escalates it
on the session in the same save (the team is notified once per wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from connector.domain.conversation import ReceivedMessage, SessionState, derived_id, open_session
from connector.domain.model import Configuration
from connector.domain.routing import SenderContext
from connector.errors import StateStoreError
from connector.log_config import get_logger
from connector.ports import ConfigurationLookup, RecordResolver, SessionStore

log = get_logger(__name__)
_SAVE_ATTEMPTS = 5
Received = Mapping[int, tuple[ReceivedMessage, Configuration, bool]]
"""A batch's messages by index: the message, its configuration and whether it is blocked."""
Conversations = Mapping[tuple[str, str], Sequence[int]]
"""The batch's conversations, ``(configuration id, phone)``: their messages' indexes."""
Placed = list[tuple[SessionState, bool]]
"""Each message's session (in arrival order) and whether the message opened it."""
Change = tuple[SessionState, SessionState | None]
"""A session to store and the pair's latest session as read (None: there was none)."""


class ConversationPlacer:
    """Places a batch's messages on their conversations' sessions (see the module
    docstring)."""

    def __init__(
        self,
        configurations: ConfigurationLookup,
        sessions: SessionStore,
        resolver: RecordResolver,
        *,
        team_members: Callable[[str], frozenset[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configs = configurations
        self._sessions = sessions
        self._resolver = resolver
        self._team_members = team_members
        self._clock = clock

    def place_batch(
        self,
        conversations: Conversations,
        received: Received,
    ) -> list[tuple[Sequence[int], Placed | Exception]]:
        """Each conversation's message sessions (or the error that stopped them): the
        batch's sessions read at once (one read per configuration), placed, and stored in
        one write; a conversation whose pair another worker moved meanwhile (or that could
        not be read) goes through :meth:`sessions_for` on its own."""
        planned = self._plan(conversations, received)
        try:
            stored = self._sessions.save_groups([changes for _, _, changes in planned])
        except Exception as exc:  # the store failed: each conversation with changes too
            return [(indexes, exc if changes else placed) for indexes, placed, changes in planned]
        return [
            (indexes, placed if ok else self._alone(indexes, received))
            for (indexes, placed, _), ok in zip(planned, stored, strict=True)
        ]

    def _alone(
        self,
        indexes: Sequence[int],
        received: Received,
    ) -> Placed | Exception:
        """A conversation whose pair moved since the batch read it: read again and start
        over, on its own."""
        messages = [received[i][0] for i in indexes]
        return self._sessions_or_error(messages, received[indexes[0]][1])

    def _plan(
        self,
        conversations: Conversations,
        received: Received,
    ) -> list[tuple[Sequence[int], Placed | Exception, list[Change]]]:
        """Each conversation's sessions placed on its latest session as the batch read it,
        and the changes to store (none for a conversation that failed, or that had to be
        read on its own and is stored already)."""
        currents = self._currents(conversations)
        planned: list[tuple[Sequence[int], Placed | Exception, list[Change]]] = []
        for key, indexes in conversations.items():
            messages = [received[i][0] for i in indexes]
            config = received[indexes[0]][1]
            if key not in currents:
                planned.append((indexes, self._sessions_or_error(messages, config), []))
                continue
            try:
                placed, changes = self._place(messages, config, currents[key])
            except Exception as exc:  # this conversation fails; the others go on
                planned.append((indexes, exc, []))
                continue
            planned.append((indexes, placed, changes))
        return planned

    def _currents(self, conversations: Conversations) -> dict[tuple[str, str], SessionState | None]:
        """The latest session of each conversation, read per configuration; a configuration
        whose read failed is left out (its conversations read on their own)."""
        phones: dict[str, list[str]] = {}
        for config_id, number in conversations:
            phones.setdefault(config_id, []).append(number)
        currents: dict[tuple[str, str], SessionState | None] = {}
        for config_id, numbers in phones.items():
            try:
                found = self._sessions.current_many(config_id, numbers)
            except Exception as exc:  # each conversation reads (and fails) on its own
                log.warning("inbound.sessions_not_read", error=type(exc).__name__)
                continue
            currents.update({(config_id, n): found.get(n) for n in numbers})
        return currents

    def _sessions_or_error(
        self, messages: Sequence[ReceivedMessage], config: Configuration
    ) -> Placed | Exception:
        try:
            return self.sessions_for(messages, config)
        except Exception as exc:  # this conversation fails; the others go on
            return exc

    def sessions_for(
        self, messages: Sequence[ReceivedMessage], config: Configuration
    ) -> list[tuple[SessionState, bool]]:
        """The session of each message of one conversation (in arrival order), counted and
        stored with one optimistic write (race-safe: a conflict re-reads and starts over)."""
        assert config.id is not None
        for _ in range(_SAVE_ATTEMPTS):
            current = self._sessions.current(config.id, messages[0].from_number)
            placed, changes = self._place(messages, config, current)
            if not changes or self._sessions.save_many(changes):
                return placed
        raise StateStoreError(
            "the session kept changing under these messages",
            details={"ids": [message.provider_id for message in messages]},
        )

    def _place(
        self,
        messages: Sequence[ReceivedMessage],
        config: Configuration,
        current: SessionState | None,
    ) -> tuple[list[tuple[SessionState, bool]], list[tuple[SessionState, SessionState | None]]]:
        """Each message's session starting from ``current``, and the changes to store."""
        assert config.id is not None
        placed: list[tuple[SessionState, bool]] = []
        changes: list[tuple[SessionState, SessionState | None]] = []
        stored, state = current, current  # as read / as counted so far
        for message in messages:
            opened_here = derived_id("session", config.id, message.from_number, message.provider_id)
            if state is not None and state.id == opened_here:
                placed.append((state, True))  # a retry of the message that opened it
            elif state is not None and state.is_open(message.received_at):
                if state.regarding_table is None:  # opened by a send to a number only
                    state = self._with_record(state, message.from_number, config)
                state = self._escalated(
                    state.with_inbound(message.received_at, message.provider_id), message, config
                )
                placed.append((state, False))
            else:
                if state is not stored and state is not None:
                    changes.append((state, stored))
                stored, state = state, self._new_session(message, config, state)
                placed.append((state, True))
        if state is not stored and state is not None:
            changes.append((state, stored))
        return placed, changes

    def _new_session(
        self, message: ReceivedMessage, config: Configuration, previous: SessionState | None
    ) -> SessionState:
        assert config.id is not None
        owner = (config.owner_id, False)
        if config.owning_team_id:
            owner = (config.owning_team_id, True)
        session = open_session(
            message, config.id, config.session_timeout_minutes, previous, owner
        ).with_inbound(message.received_at, message.provider_id)
        return self._with_record(session, message.from_number, config)

    def prefetch(
        self,
        conversations: Conversations,
        received: Received,
    ) -> None:
        """Let the resolver look a batch's unknown numbers up together, per configuration
        (a failure only means each number is looked up on its own later)."""
        phones: dict[str, tuple[Configuration, list[str]]] = {}
        for (config_id, number), indexes in conversations.items():
            phones.setdefault(config_id, (received[indexes[0]][1], []))[1].append(number)
        for config, numbers in phones.values():
            if len(numbers) < 2:
                continue
            try:
                self._resolver.prefetch(numbers, SenderContext.of(config))
            except Exception as exc:  # resolve looks each number up itself
                log.warning("inbound.prefetch_failed", error=type(exc).__name__)

    def _with_record(
        self, session: SessionState, phone_e164: str, config: Configuration
    ) -> SessionState:
        """``session`` linked to the record the number resolves to, with the match trace."""
        resolution = self._resolver.resolve(phone_e164, SenderContext.of(config))
        record = resolution.record
        return replace(
            session,
            regarding_table=record.table if record else None,
            regarding_id=record.id if record else None,
            match_trace=resolution.trace.to_json(),
        )

    def _escalated(
        self, session: SessionState, message: ReceivedMessage, config: Configuration
    ) -> SessionState:
        """``session`` with its wait escalated by ``message`` if the team is due an alert."""
        if not config.owning_team_id or self._team_members is None or config.id is None:
            return session
        due = session.escalation_due(self._clock(), config.idle_timeout_minutes, float("inf"))
        if not due or self._configs.is_blocked(config.id, message.from_number):
            return session
        return session.escalated(self._clock(), by=message.provider_id)
