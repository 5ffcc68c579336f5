"""Signing in to the messages page: an API key exchanged for a signed session cookie.

Stateless, so every web process that shares the API keys accepts the cookie: the cookie is
``<payload>.<signature>``, the payload (base64url JSON) holding a random nonce, an expiry
and the acting Dataverse user id (optional), the signature an HMAC-SHA256 under a key derived
from the API key that signed in (removing that key from the settings ends its sessions).
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


def issue(key: bytes, user_id: str | None, *, now: float | None = None) -> str:
    """A new session cookie value signed with ``key``."""
    payload = {
        "n": secrets.token_urlsafe(18),
        "e": (time.time() if now is None else now) + LIFETIME_SECONDS,
        "u": user_id or None,
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify(
    cookie: str | None, keys: Sequence[bytes], *, now: float | None = None
) -> PageSession | None:
    """The session ``cookie`` carries, if one of ``keys`` signed it and it has not expired."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 2000:
        return None
    body, signature = cookie.split(".")
    for key in keys:
        expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            continue
        try:
            payload = json.loads(_unb64(body))
            nonce, expires = str(payload["n"]), float(payload["e"])
            user = payload.get("u")
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= (time.time() if now is None else now):
            return None
        return PageSession(nonce, expires, str(user) if user else None, key)
    return None
