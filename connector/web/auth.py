"""Signing in to the messages page: a signed session cookie, for an API key or a Microsoft user.

Stateless, so every web process that shares the API keys accepts the cookie: the cookie is
``<payload>.<signature>``, the payload (base64url JSON) holding a random nonce, an expiry,
the acting Dataverse user id (optional) and, for "Sign in with Microsoft", the user's Entra
object id (the page's session actions then act as that user), the signature an HMAC-SHA256
under a key derived from the API key that signed in (removing that key from the settings
ends its sessions) or from the sign-in app's client secret. The sign-in flow's own state
(:func:`seal` / :func:`unseal`) travels the same way in a short-lived cookie.
Local mode without API keys signs with a random key made for the process. The CSRF token of
a session is an HMAC of its nonce under the same key (the synchronizer-token pattern without
server state): forms carry it in a hidden field, htmx requests in ``X-CSRF-Token``.
Everything here is pure; the router sets the cookie (HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

COOKIE = "connector_page"
LIFETIME_SECONDS = 12 * 3600
_PURPOSE = b"connector messages page v1"


@dataclass(frozen=True, slots=True)
class PageSession:
    """A signed-in browser."""

    nonce: str
    expires_at: float
    user_id: str | None
    key: bytes  # the signing key that verified it (its CSRF tokens use it too)
    object_id: str | None = None  # Entra object id: a Microsoft sign-in acts as this user

    def csrf(self) -> str:
        """This session's CSRF token."""
        return hmac.new(self.key, b"csrf:" + self.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant time)."""
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf())


def signing_key(api_key: str) -> bytes:
    """The cookie key derived from an API key (the key itself never signs anything)."""
    return hmac.new(api_key.encode(), _PURPOSE, hashlib.sha256).digest()


def key_for(presented: str, api_keys: Sequence[str]) -> bytes | None:
    """The signing key of the API key ``presented`` (None: not a configured key)."""
    for key in api_keys:
        if presented and hmac.compare_digest(presented.encode(), key.encode()):
            return signing_key(key)
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, payload: dict[str, Any], lifetime: float, *, now: float | None = None) -> str:
    """``payload`` with an expiry, signed with ``key`` (``<body>.<signature>``)."""
    stamped = {**payload, "e": (time.time() if now is None else now) + lifetime}
    body = _b64(json.dumps(stamped, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def unseal(
    value: str | None, keys: Sequence[bytes], *, now: float | None = None, limit: int = 2000
) -> tuple[dict[str, Any], bytes] | None:
    """The payload :func:`seal` signed with one of ``keys`` (and that key), unless expired."""
    if not value or value.count(".") != 1 or len(value) > limit:
        return None
    body, signature = value.split(".")
    for key in keys:
        expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            continue
        try:
            payload = json.loads(_unb64(body))
            expires = float(payload["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(payload, dict) or expires <= (time.time() if now is None else now):
            return None
        return payload, key
    return None


def issue(
    key: bytes, user_id: str | None, *, object_id: str | None = None, now: float | None = None
) -> str:
    """A new session cookie value signed with ``key``."""
    payload = {"n": secrets.token_urlsafe(18), "u": user_id or None, "o": object_id or None}
    return seal(key, payload, LIFETIME_SECONDS, now=now)


def verify(
    cookie: str | None, keys: Sequence[bytes], *, now: float | None = None
) -> PageSession | None:
    """The session ``cookie`` carries, if one of ``keys`` signed it and it has not expired."""
    opened = unseal(cookie, keys, now=now)
    if opened is None:
        return None
    payload, key = opened
    try:
        nonce, expires = str(payload["n"]), float(payload["e"])
    except (KeyError, TypeError, ValueError):
        return None
    user, object_id = payload.get("u"), payload.get("o")
    return PageSession(
        nonce, expires, str(user) if user else None, key, str(object_id) if object_id else None
    )
