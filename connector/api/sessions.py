"""Conversation actions: ``POST /api/v1/sessions/{id}/accept|dismiss|block|assign|close``.

An API key or an Entra ID user token is required. With a token the request acts as its user:
the body's ``user_id`` is ignored (the token's user is the agent) and the action's Dataverse
writes carry ``CallerObjectId``, so Dataverse's security decides (refused: 403 ``forbidden``,
nothing changed). With an API key (an integration, not a person) the acting agent is named in
the body (``{"user_id": "<guid>"}``) and the writes are the connector's own; ``assign`` takes
``{"owner_id": ..., "owner_type": "systemuser" | "team"}``. The answer is the session as it
now stands. Errors are problem+json (unknown session: 404 ``not_found``; a user or team
Dataverse does not have: 422 ``unknown_reference``, and the session is left as it was).
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from connector.api.deps import CallerDep, SessionsDep, require_api_key
from connector.api.identity import Caller
from connector.domain.conversation import SessionState
from connector.errors import UnprocessableError


class AgentRequest(BaseModel):
    """Who is acting."""

    user_id: uuid.UUID | None = Field(
        default=None,
        description="The acting user's systemuserid (API keys; a user token acts as its user)",
    )

    def agent(self, caller: Caller) -> str:
        """The acting user: the token's, else the one named here (then required)."""
        agent = caller.agent(self.user_id)
        if agent is None:
            raise UnprocessableError("user_id is required with an API key")
        return agent


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
def accept(
    session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep, caller: CallerDep
) -> SessionView:
    """The user takes the conversation: becomes its owner."""
    with caller.acting():
        return SessionView.of(actions.accept(str(session_id), body.agent(caller)))


@router.post("/{session_id}/dismiss", response_model=SessionView, operation_id="dismissSession")
def dismiss(
    session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep, caller: CallerDep
) -> SessionView:
    """Hide the conversation for the user."""
    with caller.acting():
        return SessionView.of(actions.dismiss(str(session_id), body.agent(caller)))


@router.post("/{session_id}/block", response_model=SessionView, operation_id="blockSessionNumber")
def block(
    session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep, caller: CallerDep
) -> SessionView:
    """Block the number for the configuration (for everyone)."""
    with caller.acting():
        return SessionView.of(actions.block(str(session_id), body.agent(caller)))


@router.post("/{session_id}/assign", response_model=SessionView, operation_id="assignSession")
def assign(
    session_id: uuid.UUID, body: AssignRequest, actions: SessionsDep, caller: CallerDep
) -> SessionView:
    """Move the conversation to a user or a team."""
    team = body.owner_type == "team"
    with caller.acting():
        return SessionView.of(actions.assign(str(session_id), str(body.owner_id), team=team))


@router.post("/{session_id}/close", response_model=SessionView, operation_id="closeSession")
def close(
    session_id: uuid.UUID, body: AgentRequest, actions: SessionsDep, caller: CallerDep
) -> SessionView:
    """End the conversation: its activity is completed; the next message opens a new one."""
    with caller.acting():
        return SessionView.of(actions.close(str(session_id), body.agent(caller)))
