"""Sign in with Microsoft for the messages page: OIDC authorization code with PKCE (MSAL).

:meth:`MicrosoftSignIn.start` begins MSAL's ``initiate_auth_code_flow`` (state, nonce and a
PKCE S256 code verifier) for the connector's delegated API scope and gives the browser the
authorize URL; Microsoft posts the code back (``response_mode=form_post``: no code in URLs or
browser history). The flow itself goes to the browser sealed in a short-lived signed cookie
(``SameSite=None; Secure``, so it comes back with that cross-site POST; the page must be served
over https), so any web process can finish it. :meth:`MicrosoftSignIn.finish` redeems the code
with ``acquire_token_by_auth_code_flow`` (which checks the state and the ID token's nonce) and
validates the user's access token exactly as the API does (the same ``EntraTokens``: signature,
issuer, audience, scope, and the user's systemuser), so the page signs in the same users the
API accepts; MSAL's cache keeps none of the users' tokens afterwards (the page needs each only
once). The session cookie is then signed with a key derived from the client secret (rotating
the secret ends these sessions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msal

from connector.errors import ConnectorError, UnauthorizedError
from connector.web import auth

FLOW_COOKIE = "connector_signin_flow"
FLOW_LIFETIME_SECONDS = 600
CALLBACK_PATH = "/signin/microsoft/callback"
_KEPT = ("state", "redirect_uri", "scope", "nonce", "code_verifier", "claims_challenge")


class SignInError(ConnectorError):
    """The identity provider could not be reached or refused the sign-in."""

    code = "signin_failed"


class MicrosoftSignIn:
    """The page's Entra ID sign-in: one app registration (client id and secret)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        authority: str,
        scope: str,
        user_of_token: Callable[[str], tuple[str, str]],
        *,
        redirect_base: str | None = None,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.authority = authority.rstrip("/")
        self.scope = scope
        self._user_of_token = user_of_token
        self.redirect_base = redirect_base.rstrip("/") if redirect_base else None
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        """The cookie key of these sessions (derived from the client secret)."""
        return auth.signing_key("microsoft sign-in:" + self._secret)

    def _client(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                try:  # reads the authority's metadata: made once, on the first sign-in
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._secret,
                        authority=self.authority,
                        instance_discovery=False,  # the configured authority is trusted as is
                    )
                except (ValueError, OSError) as exc:
                    raise SignInError(
                        f"the sign-in authority {self.authority} could not be used"
                    ) from exc
            return self._app

    def redirect_uri(self, request_base: str) -> str:
        """Where Microsoft sends the browser back (register it on the app registration)."""
        return (self.redirect_base or request_base.rstrip("/")) + CALLBACK_PATH

    def start(self, redirect_uri: str) -> tuple[str, dict[str, Any]]:
        """The authorize URL to send the browser to, and the flow to keep until it returns."""
        flow = self._client().initiate_auth_code_flow(
            [self.scope], redirect_uri=redirect_uri, response_mode="form_post"
        )
        return str(flow["auth_uri"]), {k: flow[k] for k in _KEPT if k in flow}

    def finish(self, flow: dict[str, Any], response: dict[str, str]) -> tuple[str, str]:
        """The signed-in user's (Entra object id, systemuserid) from the authorize response.

        Raises :class:`~connector.errors.UnauthorizedError` (or ``ForbiddenError`` for a token
        without the API's scope) with a message fit for the sign-in page.
        """
        if response.get("error"):
            reason = response.get("error_description") or response["error"]
            raise UnauthorizedError(f"Microsoft did not sign you in: {reason[:200]}")
        client = self._client()
        try:
            result = client.acquire_token_by_auth_code_flow(flow, response, scopes=[self.scope])
        except (ValueError, RuntimeError) as exc:  # state or nonce mismatch: not our flow
            raise UnauthorizedError("this sign-in did not start in this browser") from exc
        finally:
            for account in client.get_accounts():  # the page keeps no user's tokens in memory
                client.remove_account(account)
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            reason = str(result.get("error_description") or result.get("error") or "no token")
            raise UnauthorizedError(f"Microsoft did not issue a token: {reason[:200]}")
        return self._user_of_token(str(token))
