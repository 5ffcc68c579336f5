"""``POST /api/v1/sessions/{id}/move``: move a conversation to another CRM record.

The body names the target record (``{"table": "lead", "id": "<guid>"}``); the session and its
messages are re-linked and later replies from the number follow the move. API key or user
token required (a token's writes carry its user's ``CallerObjectId``: refused by Dataverse,
403 and nothing moved); errors are problem+json like every other API answer. The route uses the
:class:`~connector.services.conversation_move.ConversationMover` the composition root built.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from connector.api.deps import CallerDep, MoverDep, require_api_key
from connector.domain.routing import RecordRef


class MoveRequest(BaseModel):
    """The record to move the conversation to."""

    table: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Logical name of the target table (contact, account, lead, opportunity...)",
    )
    id: uuid.UUID = Field(description="Id of the target record")


class MoveResponse(BaseModel):
    """What the move did."""

    session_id: str
    previous: str | None
    regarding: str
    messages_moved: int
    match_trace: dict[str, Any]


router = APIRouter(
    prefix="/api/v1/sessions", tags=["sessions"], dependencies=[Depends(require_api_key)]
)


@router.post("/{session_id}/move", response_model=MoveResponse, operation_id="moveSession")
def move_session(
    session_id: uuid.UUID, body: MoveRequest, mover: MoverDep, caller: CallerDep
) -> MoveResponse:
    """Re-link the session and its messages to another record; later replies follow."""
    with caller.acting():  # a user token: Dataverse decides whether this user may
        result = mover.move(str(session_id), RecordRef(body.table, str(body.id)))
    return MoveResponse(
        session_id=result.session_id,
        previous=str(result.previous) if result.previous else None,
        regarding=str(result.target),
        messages_moved=result.messages_moved,
        match_trace=result.trace.to_dict(),
    )
