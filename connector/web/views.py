"""What the thread pane shows, gathered from the services (no HTML here).

:func:`thread_context` opens one conversation for the page: the session from the mirror, its
messages from Dataverse (opening marks it read: at most two Dataverse requests), the sender
choice, the published templates, the tables a record may be created in, the consent badge
and history (the local ledger). :func:`when` formats Dataverse's UTC times for people.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.errors import ConnectorError

if TYPE_CHECKING:
    from connector.web.auth import PageSession
    from connector.web.wiring import PageServices


def when(value: str | None) -> str:
    """``2026-05-01T09:30:00Z`` as ``2026-05-01 09:30 UTC`` (unknown: empty)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _trace(text: str) -> str:
    """The match trace as readable lines (it is JSON)."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def thread_context(
    services: PageServices,
    signed_in: PageSession,
    session_id: str,
    *,
    notice: str | None = None,
    mark_read: bool = True,
) -> dict[str, Any]:
    """Everything the thread pane renders for ``session_id``."""
    inbox = services.inbox
    assert inbox is not None
    try:
        opened = inbox.thread(session_id, mark_read=mark_read)
    except ConnectorError as exc:
        return {"error": exc.message, "session_id": session_id}
    session = opened.session
    config = inbox.configuration(session)
    history: list[dict[str, Any]] = []
    if services.consent is not None:
        try:
            status = services.consent.status(session.phone)
            history = [
                h for h in status["history"] if h["configuration_id"] == session.configuration_id
            ]
        except ConnectorError:
            history = []
    templates = list(services.templates.published()) if services.templates is not None else []
    names = [m.regarding_name for m in opened.messages if m.regarding_name]
    name = names[-1] if names and names[-1] != session.phone else None
    return {
        "name": name,
        "session": session,
        "session_id": session.id,
        "messages": opened.messages,
        "config": config,
        "senders": inbox.senders(),
        "templates": templates,
        "creatable": inbox.creatable(session),
        "consent": inbox.consent(session.phone, session.configuration_id),
        "consent_history": history,
        "trace": _trace(session.match_trace),
        "notice": notice,
        "user_id": signed_in.user_id,
    }
