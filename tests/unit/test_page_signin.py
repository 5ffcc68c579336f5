"""The messages page's signed values and the Sign in with Microsoft settings.

Session cookies and the sign-in flow's cookie are HMAC-signed, expire, and name the Entra
user for a Microsoft sign-in; the settings derive the authority and the delegated scope the
page asks for, and refuse half a configuration.
"""

from __future__ import annotations

import time

import pytest

from connector.errors import ConfigurationError
from connector.settings import load_settings
from connector.web import auth

KEY = auth.signing_key("one key")
OTHER = auth.signing_key("another key")
ISSUER = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"
OID = "0f0f0f0f-1111-2222-3333-000000000001"


def test_a_microsoft_session_carries_the_users_object_id() -> None:
    cookie = auth.issue(KEY, "user-1", object_id=OID)
    session = auth.verify(cookie, [OTHER, KEY])
    assert session is not None
    assert (session.user_id, session.object_id, session.key) == ("user-1", OID, KEY)
    api_key_session = auth.verify(auth.issue(KEY, None), [KEY])
    assert api_key_session is not None and api_key_session.object_id is None


def test_sealed_values_refuse_other_keys_tampering_and_age() -> None:
    sealed = auth.seal(KEY, {"flow": {"state": "s1"}}, 600)
    opened = auth.unseal(sealed, [KEY])
    assert opened is not None and opened[0]["flow"] == {"state": "s1"}
    assert auth.unseal(sealed, [OTHER]) is None
    body, signature = sealed.split(".")
    assert auth.unseal(body + "x." + signature, [KEY]) is None
    assert auth.unseal(auth.seal(KEY, {}, 600, now=time.time() - 601), [KEY]) is None
    assert auth.unseal(sealed, [KEY], limit=10) is None
    assert auth.unseal(None, [KEY]) is None


def test_signin_settings_derive_authority_and_scope() -> None:
    env = {
        "CONNECTOR_API__ENTRA_ISSUER": ISSUER,
        "CONNECTOR_API__ENTRA_AUDIENCE": "aaaaaaaa-0000-0000-0000-000000000001",
        "CONNECTOR_API__ENTRA_CLIENT_ID": "bbbbbbbb-0000-0000-0000-000000000002",
        "CONNECTOR_API__ENTRA_CLIENT_SECRET": "s3cret",
    }
    api = load_settings(env=env).api
    assert api.signin_authority() == ISSUER.removesuffix("/v2.0")
    assert api.signin_scope() == "api://aaaaaaaa-0000-0000-0000-000000000001/access_as_user"
    named = load_settings(
        env={**env, "CONNECTOR_API__ENTRA_AUDIENCE": "api://sms", "CONNECTOR_API__ENTRA_SCOPE": "X"}
    ).api
    assert named.signin_scope() == "api://sms/X"
    assert load_settings(env={}).api.signin_authority() is None


def test_half_a_signin_configuration_is_refused() -> None:
    api = {"CONNECTOR_API__ENTRA_ISSUER": ISSUER, "CONNECTOR_API__ENTRA_AUDIENCE": "aud"}
    with pytest.raises(ConfigurationError, match="go together"):
        load_settings(env={**api, "CONNECTOR_API__ENTRA_CLIENT_ID": "x"})
    with pytest.raises(ConfigurationError, match="needs entra_issuer"):
        load_settings(
            env={"CONNECTOR_API__ENTRA_CLIENT_ID": "x", "CONNECTOR_API__ENTRA_CLIENT_SECRET": "y"}
        )
