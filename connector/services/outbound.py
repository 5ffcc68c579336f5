"""The one send path: a send order becomes a queued message in the outbox.

:class:`SendService` takes an order from any caller (the HTTP API, the CLI; later bulk sends,
Dataverse-created rows and automatic replies) and, in this order:

1. reads the template and the regarding record (one request; its owner, name, phone columns
   and the template's fields);
2. resolves the recipient (``to``, else the record's phone columns in record-type order) and
   refuses an unparseable or non-mobile number;
3. chooses the sender: explicit (``from`` / ``configuration_id``), else the configuration
   that last talked with the number, else the one owned by the record's owner or their team,
   else the single active configuration for the number's country (``sender_ambiguous``);
4. renders the template (a missing value is ``template_value_missing``: nothing is sent);
5. **gates** (:meth:`SendService.gates`), in this order, each a ``409`` with a stable code
   and nothing stored: ``number_blocked`` (the blocked list), ``consent_opted_out`` (that
   purpose opted out: STOP opts out of all), ``consent_missing`` (commercial without an
   opt-in), ``compliance_blocked`` (the record type's compliance column on the regarding
   record is not true); then **quiet hours**: an automated or commercial send inside the
   sender's quiet hours (its time zone) is deferred to the first allowed minute and shows
   ``scheduled``; a person's transactional reply inside an open conversation is not.
   The connector's own automatic replies (keyword confirmations, HELP, the double opt-in
   request) pass the consent and quiet-hour gates: they answer the customer's own message;
6. counts segments and encoding;
7. places the message in the conversation session of that sender and number (opened if none
   is open, or if the send is about another record) and makes the record the number's most
   recent conversation, so the customer's reply lands on it;
8. stores the message in the outbox (durable before the answer) and wakes the sender.

Bad input raises a :class:`~connector.errors.ConnectorError` with a stable code before
anything is stored. Sending (:mod:`connector.services.outbox_sender`) and the Dataverse
writes (:mod:`connector.services.outbound_sync`) happen later, in the worker.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connector.domain import phone, quiet_hours, templates
from connector.domain.conversation import Acceptance, SessionState, derived_id
from connector.domain.model import Configuration, MessageCategory, Template
from connector.domain.outbound import MAX_BODY_CHARACTERS, MAX_MEDIA_URLS, OutboundMessage
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.routing import RecordRef, SenderContext
from connector.domain.segments import SegmentInfo, count_segments
from connector.domain.status import MessageStatus
from connector.errors import (
    InvalidInputError,
    InvalidPhoneNumberError,
    NotFoundError,
    RefusedError,
    StateStoreError,
    UnprocessableError,
)
from connector.log_config import get_logger
from connector.ports import (
    Added,
    ConfigurationLookup,
    OutboxAdds,
    RecordReader,
    RecordResolver,
    RegardingRecord,
    SessionChange,
    SessionStore,
    TemplateCatalog,
)

log = get_logger(__name__)

_NOT_MOBILE = frozenset(
    {"fixed_line", "toll_free", "premium_rate", "shared_cost", "uan", "voicemail", "pager"}
)
_SAVE_ATTEMPTS = 5
_COMMIT_WAIT_SECONDS = 30.0


class SendOrigin(enum.StrEnum):
    """Who is sending: an automation (a flow, a workflow, an integration: quiet hours apply)
    or a person writing in a conversation (a transactional reply is not deferred)."""

    AUTOMATION = "automation"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class SendOrder:
    """What a caller asks to send. ``body`` or ``template_id`` (with ``regarding``) or media;
    ``to`` may be left out when ``regarding`` is given. ``send_at`` is epoch seconds.
    ``automatic`` marks the connector's own replies (see the module docstring)."""

    body: str | None = None
    to: str | None = None
    from_number: str | None = None
    configuration_id: str | None = None
    regarding: RecordRef | None = None
    template_id: str | None = None
    category: MessageCategory | None = None
    media_urls: tuple[str, ...] = ()
    send_at: float | None = None
    origin: SendOrigin = SendOrigin.AUTOMATION
    automatic: bool = False
    message_id: str | None = None
    """The message's id when the caller has one (a row created in Dataverse: its row id, so
    the row is updated in place and the outbox holds it once); else a new one."""

    def fingerprint(self) -> str:
        """A hash of the order, for ``Idempotency-Key`` checks."""
        data = {
            "body": self.body,
            "to": self.to,
            "from": self.from_number,
            "configuration_id": self.configuration_id,
            "regarding": str(self.regarding) if self.regarding else None,
            "template_id": self.template_id,
            "category": self.category.value if self.category else None,
            "media_urls": list(self.media_urls),
            "send_at": self.send_at,
            "origin": self.origin.value,
            "automatic": self.automatic,
        }
        if self.message_id is not None:  # left out otherwise: stored hashes stay valid
            data["message_id"] = self.message_id
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A body as it will go out: the text and how it is carried."""

    body: str
    segments: SegmentInfo

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the preview's answer)."""
        return {
            "body": self.body,
            "characters": self.segments.characters,
            "segments": self.segments.segments,
            "encoding": self.segments.encoding.value,
            "ucs2_characters": list(self.segments.ucs2_triggers),
            "ucs2_character_names": self.segments.trigger_names(),
        }


@dataclass(frozen=True, slots=True)
class _Draft:
    """A message ready for the outbox, with what placing it again needs."""

    message: OutboundMessage
    config: Configuration
    record: RegardingRecord | None
    session: SessionChange
    idempotency_key: str | None
    request_hash: str | None


@dataclass
class SendService:
    """The send path up to the outbox (see the module docstring)."""

    configurations: ConfigurationLookup
    sessions: SessionStore
    resolver: RecordResolver
    records: RecordReader
    templates: TemplateCatalog
    outbox: OutboxAdds
    record_types: Callable[[SenderContext], Sequence[RecordTypeSpec]]
    consent: Callable[[str, str, MessageCategory], str | None] | None = None
    team_members: Callable[[str], frozenset[str]] | None = None
    nudge: Callable[[], None] = field(default=lambda: None)
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    # -- the path -----------------------------------------------------------------------
    def send(self, order: SendOrder, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue one message; the ``202`` answer (the first answer again for a repeated
        ``idempotency_key`` with the same order)."""
        draft = self._draft(order, idempotency_key)
        for _ in range(_SAVE_ATTEMPTS):
            added = self.outbox.add(
                draft.message,
                _answer(draft.message),
                idempotency_key=draft.idempotency_key,
                request_hash=draft.request_hash,
                session=draft.session,
            )
            if not added.session_moved:
                return self._queued(added, draft.message)
            draft = self._placed_again(draft)
        raise _kept_changing(draft)

    async def send_async(
        self, order: SendOrder, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """:meth:`send` on an event loop: the outbox's commit is awaited, no thread waits
        for it. Only for an order :meth:`answers_locally` (the rest reads Dataverse)."""
        draft = self._draft(order, idempotency_key)
        for _ in range(_SAVE_ATTEMPTS):
            future = self.outbox.add_future(
                draft.message,
                _answer(draft.message),
                idempotency_key=draft.idempotency_key,
                request_hash=draft.request_hash,
                session=draft.session,
            )
            try:
                added = await asyncio.wait_for(asyncio.wrap_future(future), _COMMIT_WAIT_SECONDS)
            except TimeoutError:
                raise StateStoreError(f"no commit within {_COMMIT_WAIT_SECONDS} s") from None
            if not added.session_moved:
                return self._queued(added, draft.message)
            draft = self._placed_again(draft)
        raise _kept_changing(draft)

    def answers_locally(self, order: SendOrder) -> bool:
        """Whether :meth:`send` can run without waiting for Dataverse: no template or record
        to read and the configurations in memory (an event loop may then run it)."""
        return order.template_id is None and order.regarding is None and self.configurations.ready()

    def _draft(self, order: SendOrder, idempotency_key: str | None) -> _Draft:
        """The message the order makes, placed in its session (steps 1 to 7)."""
        _check_shape(order)
        template = self._template(order.template_id)
        record, phones = self._record(order, template)
        explicit = self._explicit_sender(order)
        to = self._recipient(order, record, phones, explicit)
        config = explicit or self._choose_sender(to, record)
        assert config.id is not None
        body = self._body(order, template, record, config)
        category = order.category or (template.category if template else None)
        category = category or MessageCategory.TRANSACTIONAL
        now = self.clock()
        send_at = order.send_at if order.send_at and order.send_at > now else None
        send_at = self.gates(config, to, record, category, order=order, send_at=send_at) or send_at
        info = count_segments(body.body) if body.body else None
        message_id = order.message_id or self.new_id()
        current, session = self._session(
            config, to, record, message_id, now, automatic=order.automatic
        )
        message = OutboundMessage(
            id=message_id,
            configuration_id=config.id,
            to_number=to,
            from_number=None if config.messaging_service_id else config.sender_number,
            messaging_service_id=config.messaging_service_id,
            body=body.body,
            session_id=session.id,
            created_at=now,
            updated_at=now,
            category=category,
            template_id=template.id if template else None,
            regarding_table=session.regarding_table,
            regarding_id=session.regarding_id,
            media_urls=order.media_urls,
            send_at=send_at,
            status=MessageStatus.SCHEDULED if send_at else MessageStatus.QUEUED,
            automatic=order.automatic,
            created_in_crm=order.message_id is not None,
            segments=info.segments if info else 0,
            encoding=body.segments.encoding,
            ucs2_characters=body.segments.ucs2_triggers,
            owner_id=session.owner_id,
            owner_is_team=session.owner_is_team,
            sender_user=config.owner_id,
        )
        request_hash = order.fingerprint() if idempotency_key else None
        return _Draft(message, config, record, (session, current), idempotency_key, request_hash)

    def send_automatic(self, to: str, config: Configuration, body: str, *, key: str) -> Any:
        """One of the connector's own replies (a keyword's confirmation, HELP, the double
        opt-in request): sent once per ``key``, marked automatic."""
        order = SendOrder(body=body, to=to, configuration_id=config.id, automatic=True)
        return self.send(order, idempotency_key=key)

    def preview(
        self, template_id: str, regarding: RecordRef | None, configuration_id: str | None
    ) -> Rendered:
        """A template rendered against a record, without sending anything."""
        order = SendOrder(
            template_id=template_id, regarding=regarding, configuration_id=configuration_id
        )
        template = self._template(template_id)
        record, _ = self._record(order, template)
        config = self._explicit_sender(order)
        return self._body(order, template, record, config)

    def gates(
        self,
        config: Configuration,
        to: str,
        record: RegardingRecord | None,
        category: MessageCategory,
        *,
        order: SendOrder,
        send_at: float | None = None,
    ) -> float | None:
        """Refuse a send that must not go out (409, see the module docstring), or say until
        when it waits for the sender's quiet hours to end (None: it need not wait)."""
        assert config.id is not None
        if self.configurations.is_blocked(config.id, to):
            raise RefusedError("this number is blocked for this sender", code="number_blocked")
        if order.automatic:
            return None
        code = self.consent(to, config.id, category) if self.consent else None
        if code is not None:
            raise _consent_refused(code, to, config, category)
        self._compliance(config, record)
        quiet = quiet_hours.QuietHours.parse(config.quiet_hours)
        if quiet is None:
            return None
        if category is MessageCategory.TRANSACTIONAL and order.origin is SendOrigin.AGENT:
            current = self.sessions.current(config.id, to)
            if current is not None and current.is_open(self.clock()):
                return None  # a person's reply in an open conversation
        return quiet_hours.next_allowed(send_at or self.clock(), quiet, config.time_zone)

    def _compliance(self, config: Configuration, record: RegardingRecord | None) -> None:
        """The record type's compliance column (e.g. a custom "allow SMS" yes/no) must be
        true on the regarding record."""
        if record is None:
            return
        column = self._compliance_column(config, record.table)
        if column is None:
            return
        if record.raw.get(column) is not True:
            raise RefusedError(
                f"the {record.table} record does not allow text messages ({column} is not "
                "set to yes)",
                code="compliance_blocked",
                details={"table": record.table, "id": record.id, "column": column},
            )

    def _compliance_column(self, config: Configuration, table: str) -> str | None:
        for spec in self.record_types(SenderContext.of(config)):
            if spec.table == table:
                return spec.compliance_column.lower() if spec.compliance_column else None
        return None

    # -- steps ----------------------------------------------------------------------------
    def _template(self, template_id: str | None) -> Template | None:
        if template_id is None:
            return None
        found = self.templates.get(template_id)
        if found is None:
            raise UnprocessableError(
                f"no template {template_id}", code="unknown_template", details={"id": template_id}
            )
        return found

    def _record(
        self, order: SendOrder, template: Template | None
    ) -> tuple[RegardingRecord | None, list[str]]:
        """The regarding record (template fields and phone columns read in one request), and
        its phone fields in record-type order."""
        if order.regarding is None:
            if template is not None and templates.fields_needed(template.body):
                raise UnprocessableError(
                    "this template needs a regarding record to fill in its values",
                    code="regarding_required",
                )
            return None, []
        phones = self._phone_fields(order.regarding.table)
        fields = list(templates.fields_needed(template.body)) if template else []
        fields += [f for f in phones if f not in fields]
        fields += [f for f in self._compliance_fields(order.regarding.table) if f not in fields]
        ref = order.regarding
        record = self.records.read(ref.table, ref.id, fields)
        if record is None:
            raise UnprocessableError(
                f"no {ref.table} record {ref.id}",
                code="regarding_not_found",
                details={"table": ref.table, "id": ref.id},
            )
        return record, phones

    def _phone_fields(self, table: str) -> list[str]:
        """The phone columns of ``table`` (through its parent lookups for a related table),
        in record-type order, over every active configuration."""
        fields: list[str] = []
        for config in self._active():
            specs = {s.table: s for s in self.record_types(SenderContext.of(config))}
            spec = specs.get(table)
            if spec is None:
                continue
            for column in spec.phone_columns:
                fields.append(column.lower())
            for value_column, parent in spec.parent_columns.items():
                lookup = value_column.removeprefix("_").removesuffix("_value")
                parent_spec = specs.get(parent)
                for column in parent_spec.phone_columns if parent_spec else ():
                    fields.append(f"{lookup}.{column}".lower())
        return list(dict.fromkeys(fields))

    def _compliance_fields(self, table: str) -> list[str]:
        """The compliance columns of ``table`` over every active configuration."""
        found = (self._compliance_column(config, table) for config in self._active())
        return list(dict.fromkeys(column for column in found if column))

    def _explicit_sender(self, order: SendOrder) -> Configuration | None:
        if order.from_number:
            try:
                number = phone.normalize(order.from_number)
            except InvalidPhoneNumberError as exc:
                raise _unknown_sender(order.from_number) from exc
            config = self.configurations.by_sender(number)
            if config is None:
                raise _unknown_sender(number)
            return config
        if order.configuration_id:
            for config in self._active():
                if config.id == order.configuration_id:
                    return config
            raise _unknown_sender(order.configuration_id)
        return None

    def _recipient(
        self,
        order: SendOrder,
        record: RegardingRecord | None,
        phones: Sequence[str],
        config: Configuration | None,
    ) -> str:
        regions = _regions(config, self._active())
        if order.to:
            return _mobile(order.to, regions)
        if record is None:
            raise InvalidInputError("give 'to' or a regarding record", code="recipient_missing")
        refused: InvalidPhoneNumberError | None = None
        for name in phones:
            raw = record.values.get(name)
            if not raw or not raw.strip():
                continue
            try:
                return _mobile(raw, regions)
            except InvalidPhoneNumberError as exc:
                refused = refused or exc
        if refused is not None:
            raise refused
        raise UnprocessableError(
            f"the {record.table} record has no phone number",
            code="regarding_without_phone",
            details={"table": record.table, "id": record.id},
        )

    def _choose_sender(self, to: str, record: RegardingRecord | None) -> Configuration:
        active = self._active()
        talked = [
            (session.last_message_at, config)
            for config in active
            if config.id and (session := self.sessions.current(config.id, to)) is not None
        ]
        if talked:
            return max(talked, key=lambda pair: pair[0])[1]
        if record is not None and record.owner_id:
            owned = [c for c in active if self._owns(c, record.owner_id)]
            if len(owned) == 1:
                return owned[0]
            if len(owned) > 1:
                raise _ambiguous(to, owned)
        region = phone.parse_phone(to).region
        local = [c for c in active if (c.default_country or "").upper() == region]
        if len(local) == 1:
            return local[0]
        if not local and len(active) == 1:
            return active[0]
        if not active:
            raise UnprocessableError("no active sender configuration", code="no_sender")
        raise _ambiguous(to, local or active)

    def _owns(self, config: Configuration, owner: str) -> bool:
        if owner in (config.owner_id, config.owning_team_id):
            return True
        team = config.owning_team_id
        return bool(team and self.team_members and owner in self.team_members(team))

    def _body(
        self,
        order: SendOrder,
        template: Template | None,
        record: RegardingRecord | None,
        config: Configuration | None,
    ) -> Rendered:
        body = order.body or ""
        if template is not None:
            values: dict[str, str | None] = dict(record.values) if record else {}
            if config is not None:
                values["sender.name"] = config.name
                values["sender.number"] = config.sender_number
            try:
                body = templates.render(template.body, values)
            except InvalidInputError as exc:
                raise UnprocessableError(exc.message, code=exc.code, details=exc.details) from exc
        if not body.strip() and not order.media_urls:
            raise InvalidInputError("the message body is empty", code="body_empty")
        if len(body) > MAX_BODY_CHARACTERS:
            raise InvalidInputError(
                f"the message body has {len(body)} characters; at most "
                f"{MAX_BODY_CHARACTERS} can be sent",
                code="body_too_long",
                details={"characters": len(body), "limit": MAX_BODY_CHARACTERS},
            )
        return Rendered(body, count_segments(body))

    def _session(
        self,
        config: Configuration,
        to: str,
        record: RegardingRecord | None,
        message_id: str,
        now: float,
        *,
        automatic: bool = False,
    ) -> tuple[SessionState | None, SessionState]:
        """The pair's session as read, and the session the message belongs to (not saved
        here: the outbox stores it with the message, in the same commit)."""
        assert config.id is not None
        current = self.sessions.current(config.id, to)
        placed = self._placed(
            config,
            to=to,
            record=record,
            message_id=message_id,
            now=now,
            current=current,
            automatic=automatic,
        )
        return current, placed

    def _placed_again(self, draft: _Draft) -> _Draft:
        """The pair's session moved since the draft read it: the message placed anew."""
        message = draft.message
        current, session = self._session(
            draft.config,
            message.to_number,
            draft.record,
            message.id,
            message.created_at,
            automatic=message.automatic,
        )
        return replace(draft, message=_in_session(message, session), session=(session, current))

    def _queued(self, added: Added, message: OutboundMessage) -> dict[str, Any]:
        """After the outbox took a new message: the record becomes the number's latest
        conversation (the reply lands on it) and the sender is woken; the answer."""
        if added.created:
            if message.regarding_table and message.regarding_id:
                ref = RecordRef(message.regarding_table, message.regarding_id)
                self.resolver.note_conversation(message.to_number, ref)
            log.info(
                "outbound.queued",
                message_id=message.id,
                session=message.session_id,
                to=message.to_number,
            )
            self.nudge()
        return dict(added.answer)

    def _placed(
        self,
        config: Configuration,
        *,
        to: str,
        record: RegardingRecord | None,
        message_id: str,
        now: float,
        current: SessionState | None,
        automatic: bool = False,
    ) -> SessionState:
        assert config.id is not None
        same_record = record is None or (
            current is not None
            and (current.regarding_table, current.regarding_id) == (record.table, record.id)
        )
        if current is not None and current.is_open(now) and same_record:
            if automatic:  # the connector answering: nobody acted, the wait goes on
                return current
            latest = max(current.last_message_at, now)
            return replace(current.acted(now), last_message_at=latest)
        target = (
            RecordRef(record.table, record.id)
            if record is not None
            else self._resolved(current, now)
        )
        owner_id, owner_is_team = config.owner_id, False
        if config.owning_team_id:
            owner_id, owner_is_team = config.owning_team_id, True
        acceptance = Acceptance.ACCEPTED
        if current is not None and current.acceptance is Acceptance.ACCEPTED:
            owner_id, owner_is_team = current.owner_id, current.owner_is_team
        trace = {
            "phone": to,
            "decided_by": "outbound_send",
            "chosen": str(target) if target else None,
        }
        return SessionState(
            id=derived_id("session", config.id, to, message_id),
            configuration_id=config.id,
            phone=to,
            started_at=now,
            expires_at=now + config.session_timeout_minutes * 60,
            regarding_table=target.table if target else None,
            regarding_id=target.id if target else None,
            owner_id=owner_id,
            owner_is_team=owner_is_team,
            acceptance=acceptance,
            last_message_at=now,
            last_action_at=now,
            match_trace=json.dumps(trace, separators=(",", ":")),
        )

    @staticmethod
    def _resolved(current: SessionState | None, now: float) -> RecordRef | None:
        """No record given: the open session's. A send never waits for a live lookup (or
        creates a lead): a session opened without a record gets one when the customer
        replies, as an inbound conversation would."""
        if current is not None and current.is_open(now) and current.regarding_table:
            return RecordRef(current.regarding_table, str(current.regarding_id))
        return None

    def _active(self) -> list[Configuration]:
        return [c for c in self.configurations.snapshot().values() if c.active and c.id]


def _check_shape(order: SendOrder) -> None:
    if order.body is not None and order.template_id is not None:
        raise InvalidInputError(
            "give either 'body' or 'template_id', not both", code="body_and_template"
        )
    if order.template_id is None and not (order.body or "").strip() and not order.media_urls:
        raise InvalidInputError("the message body is empty", code="body_empty")
    if len(order.media_urls) > MAX_MEDIA_URLS:
        raise InvalidInputError(f"at most {MAX_MEDIA_URLS} media URLs", code="too_many_media")
    for url in order.media_urls:
        if not url.lower().startswith("https://"):
            raise InvalidInputError(
                "media URLs must be https", code="media_url_invalid", details={"url": url[:200]}
            )


def _regions(config: Configuration | None, active: Sequence[Configuration]) -> tuple[str, ...]:
    if config is not None and config.default_country:
        return (config.default_country,)
    return tuple(dict.fromkeys(c.default_country for c in active if c.default_country))


def _mobile(raw: str, regions: Sequence[str]) -> str:
    """``raw`` as E.164; refused when it cannot be a number or cannot receive SMS."""
    parsed = phone.parse_phone(raw, regions)
    if parsed.number_type in _NOT_MOBILE:
        raise InvalidPhoneNumberError(
            f"{parsed.e164} is a {parsed.number_type.replace('_', ' ')} number, which cannot "
            "receive text messages",
            code="number_not_mobile",
            raw=raw[:64],
            reason=parsed.number_type,
        )
    return parsed.e164


def _consent_refused(
    code: str, to: str, config: Configuration, category: MessageCategory
) -> RefusedError:
    if code == "consent_opted_out":
        text = f"{to} opted out of {category.value} messages from {config.sender_number}"
    else:
        text = (
            f"{to} has not opted in to commercial messages from {config.sender_number}; "
            "ask for an opt-in first (POST /api/v1/consent/opt-in)"
        )
    return RefusedError(
        text,
        code=code,
        details={"to": to, "configuration_id": config.id, "category": category.value},
    )


def _unknown_sender(value: str) -> UnprocessableError:
    return UnprocessableError(
        f"no active sender configuration for {value}",
        code="unknown_sender",
        details={"sender": value[:64]},
    )


def _ambiguous(to: str, candidates: Sequence[Configuration]) -> UnprocessableError:
    return UnprocessableError(
        f"several sender configurations could send to {to}; give 'from' or 'configuration_id'",
        code="sender_ambiguous",
        details={"candidates": [c.sender_number for c in candidates]},
    )


def _kept_changing(draft: _Draft) -> StateStoreError:
    return StateStoreError(
        "the session kept changing under this send", details={"to": draft.message.to_number}
    )


def _in_session(message: OutboundMessage, session: SessionState) -> OutboundMessage:
    """``message`` placed in ``session`` (its record and owner come from the session)."""
    return replace(
        message,
        session_id=session.id,
        regarding_table=session.regarding_table,
        regarding_id=session.regarding_id,
        owner_id=session.owner_id,
        owner_is_team=session.owner_is_team,
    )


def _answer(message: OutboundMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status.value,
        "to": message.to_number,
        "from": message.from_number,
        "configuration_id": message.configuration_id,
        "session_id": message.session_id,
        "segments": message.segments,
        "encoding": message.encoding.value,
        "ucs2_characters": list(message.ucs2_characters),
        "send_at": message.send_at,
    }


def not_found(message_id: str) -> NotFoundError:
    """The error for an unknown message id."""
    return NotFoundError(f"no message {message_id}", details={"id": message_id})
