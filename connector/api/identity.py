"""Who is calling the API: an API key (the connector itself) or an Entra ID user token.

:class:`EntraTokens` validates ``Authorization: Bearer`` access tokens as Entra ID issues
them (reference notes §15): RS256 only, signature checked with the key the token's ``kid``
names in the tenant's published key set (PyJWT's JWKS client, the set cached for hours,
refetched early for an unknown ``kid`` at most every few minutes, the last good set kept when
a fetch fails), then ``exp``/``nbf`` (60 s leeway), ``aud`` and ``iss`` exactly as configured,
and an ``oid`` that is a GUID. Any failure is a 401 that names the reason class, never the
token. A valid token must also carry the connector's delegated scope (``access_as_user`` by
default) in its space-separated ``scp`` claim: a token without it (an app-only token, or one
the user consented to for something else) is a 403 ``insufficient_scope``. A valid token's
user is looked up as a systemuser (by ``oid``, cached by the lookup); a user Dataverse does
not know is refused (401) rather than served as the connector.

:class:`Caller` is the outcome, kept on the request: :meth:`Caller.acting` wraps an action
whose Dataverse writes must carry the user's identity (``CallerObjectId``), and turns
Dataverse's refusal for that user (403) into :class:`~connector.errors.ForbiddenError`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from connector.dataverse.caller import acting_as
from connector.errors import DataverseError, ForbiddenError, UnauthorizedError
from connector.log_config import get_logger

LEEWAY = 60
KEY_SET_LIFESPAN = 6 * 3600
MIN_REFRESH_INTERVAL = 300.0
DEFAULT_SCOPE = "access_as_user"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated API caller: the connector (API key) or a user (token)."""

    object_id: str | None = None  # Entra oid; None for an API key
    systemuser_id: str | None = None

    @property
    def is_user(self) -> bool:
        """Whether the request acts as a user (its Dataverse writes impersonate them)."""
        return self.object_id is not None

    def agent(self, named: object | None) -> str | None:
        """The acting user's systemuserid: the token's user, else the one the body names."""
        if self.is_user:
            return self.systemuser_id
        return None if named is None else str(named)

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Run an action as this caller: Dataverse decides, its 403 becomes ours."""
        with acting_as(self.object_id):
            try:
                yield
            except DataverseError as exc:
                if self.is_user and exc.status == 403:
                    raise ForbiddenError(
                        "Dataverse does not allow this user to change this record",
                        details={"service_code": exc.service_code},
                    ) from exc
                raise


CONNECTOR = Caller()


class EntraTokens:
    """Validates Entra ID access tokens for this API and names their user."""

    def __init__(
        self,
        issuer: str,
        audiences: Sequence[str],
        users: Callable[[str], str | None],
        *,
        jwks_url: str | None = None,
        scope: str = DEFAULT_SCOPE,
        clock: Callable[[], float] = time.monotonic,
        fetch_timeout: float = 10.0,
    ) -> None:
        if not audiences:
            raise ValueError("an Entra issuer needs at least one audience")
        if not scope.strip() or " " in scope.strip():
            raise ValueError("the delegated scope is one non-empty name, such as access_as_user")
        self.issuer = issuer
        self.audiences = list(audiences)
        self.scope = scope.strip()
        self._users = users
        self._jwks_url = jwks_url
        self._clock = clock
        self._timeout = fetch_timeout
        self._client: jwt.PyJWKClient | None = None
        self._last_refresh = -MIN_REFRESH_INTERVAL
        self._lock = threading.Lock()

    def caller(self, token: str) -> Caller:
        """The user ``token`` names (blocking: may fetch keys and query Dataverse)."""
        claims = self.claims(token)
        self.check_scope(claims)
        object_id = str(claims["oid"])
        systemuser = self._users(object_id)
        if systemuser is None:
            raise UnauthorizedError("the token's user is not a user of this Dataverse environment")
        return Caller(object_id=object_id, systemuser_id=systemuser)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, lifetime, audience and issuer are verified."""
        try:
            key = self._signing_key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "oid"]},
            )
            uuid.UUID(str(claims["oid"]))
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("the bearer token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise UnauthorizedError("the bearer token is not for this API") from exc
        except jwt.InvalidIssuerError as exc:
            raise UnauthorizedError("the bearer token's issuer is not accepted") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            log.info("api.token_refused", reason=type(exc).__name__)
            raise UnauthorizedError("the bearer token is not valid") from exc
        return claims

    def check_scope(self, claims: dict[str, Any]) -> None:
        """Refuse (403) a verified token that does not carry the connector's delegated scope."""
        granted = claims.get("scp")
        scopes = granted.split() if isinstance(granted, str) else []
        if self.scope not in scopes:
            raise ForbiddenError(
                f"the bearer token does not carry this API's delegated scope '{self.scope}' "
                "(scp); sign in to the connector's app registration with that scope",
                code="insufficient_scope",
            )

    def _signing_key(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if not kid:
            raise jwt.InvalidTokenError("the token names no key")
        client = self._keys()
        try:
            keys = {k.key_id: k for k in client.get_signing_keys()}  # the cached set
        except jwt.PyJWKClientError as exc:
            raise jwt.InvalidTokenError("the key set could not be read") from exc
        if kid in keys:
            return keys[kid].key
        with self._lock:  # an unknown kid refetches the set, at most every few minutes
            if self._clock() - self._last_refresh < MIN_REFRESH_INTERVAL:
                raise jwt.InvalidTokenError("the token's key is not in the key set")
            self._last_refresh = self._clock()
        try:
            return client.get_signing_key(kid).key
        except jwt.PyJWKClientError as exc:
            raise jwt.InvalidTokenError("the token's key is not in the key set") from exc

    def _keys(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._discovered_jwks_url()
                self._client = jwt.PyJWKClient(
                    url, cache_jwk_set=True, lifespan=KEY_SET_LIFESPAN, timeout=int(self._timeout)
                )
            return self._client

    def _discovered_jwks_url(self) -> str:
        metadata = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            answer = requests.get(metadata, timeout=self._timeout)
            answer.raise_for_status()
            return str(answer.json()["jwks_uri"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise jwt.InvalidTokenError("the issuer's metadata could not be read") from exc
