"""Conversation actions: ``POST /api/v1/sessions/{id}/accept|dismiss|block|assign|close``.

API key required. The acting agent is named in the body (``{"user_id": "<guid>"}``: an API
key belongs to an integration, not to a person); ``assign`` takes ``{"owner_id": ...,
"owner_type": "systemuser" | "team"}``. The answer is the session as it now stands. Errors
are problem+json (unknown session: 404 ``not_found``; a user or team Dataverse does not
have: 422 ``unknown_reference``, and the session is left as it was).
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from connector.api.deps import SessionsDep, require_api_key
from connector.domain.conversation import SessionState


class AgentRequest(BaseModel):
    """Who is acting."""

    user_id: uuid.UUID = Field(description="The acting user's systemuserid")


class AssignRequest(BaseModel):
    """Whom the session goes to."""

    owner_id: uuid.UUID
    owner_type: Literal["systemuser", "team"] = "systemuser"


class SessionView(BaseModel):
    """A session as the API shows it."""

    session_id: str
    configuration_id: str
    phone: str
    acceptance: str
    owner_id: str | None
    owner_type: Literal["systemuser", "team"] | None
    unread: int
    regarding: str | None
    closed: bool = Field(description="Closed: by an agent or its timeout (its activity completed)")

    @classmethod
    def of(cls, session: SessionState) -> SessionView:
        """The view of ``session``."""
        regarding = None
        if session.regarding_table and session.regarding_id:
            regarding = f"{session.regarding_table}:{session.regarding_id}"
        return cls(
            session_id=session.id,
            configuration_id=session.configuration_id,
            phone=session.phone,
            acceptance=session.acceptance.value,
            owner_id=session.owner_id,
            owner_type=("team" if session.owner_is_team else "systemuser")
            if session.owner_id
            else None,
            unread=session.unread,
            regarding=regarding,
            closed=session.closed_at is not None,
        )


router = APIRouter(
    prefix="/api/v1/sessions", tags=["sessions"], dependencies=[Depends(require_api_key)]
)


@router.post("/{session_id}/accept", response_model=SessionView, operation_id="acceptSession")
def accept(session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep) -> SessionView:
    """The user takes the conversation: becomes its owner."""
    return SessionView.of(actions.accept(str(session_id), str(body.user_id)))


@router.post("/{session_id}/dismiss", response_model=SessionView, operation_id="dismissSession")
def dismiss(session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep) -> SessionView:
    """Hide the conversation for the user."""
    return SessionView.of(actions.dismiss(str(session_id), str(body.user_id)))


@router.post("/{session_id}/block", response_model=SessionView, operation_id="blockSessionNumber")
def block(session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep) -> SessionView:
    """Block the number for the configuration (for everyone)."""
    return SessionView.of(actions.block(str(session_id), str(body.user_id)))


@router.post("/{session_id}/assign", response_model=SessionView, operation_id="assignSession")
def assign(session_id: uuid.UUID, body: AssignRequest, actions: SessionsDep) -> SessionView:
    """Move the conversation to a user or a team."""
    team = body.owner_type == "team"
    return SessionView.of(actions.assign(str(session_id), str(body.owner_id), team=team))


@router.post("/{session_id}/close", response_model=SessionView, operation_id="closeSession")
def close(session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep) -> SessionView:
    """End the conversation: its activity is completed; the next message opens a new one."""
    return SessionView.of(actions.close(str(session_id), str(body.user_id)))
