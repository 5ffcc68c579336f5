"""Entra ID user tokens for the API: what is accepted, and each refusal as a 401.

Tokens come from the emulator's token service (RS256, its published key set); the key set is
handed to PyJWT's JWKS client without a network fetch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from connector.api.identity import CONNECTOR, Caller, EntraTokens
from connector.api.problems import status_for
from connector.emulators.dataverse.token_service import TokenService
from connector.errors import DataverseError, ForbiddenError, UnauthorizedError

TENANT = "11111111-2222-3333-4444-555555555555"
ISSUER = f"https://login.example.test/{TENANT}/v2.0"
AUDIENCE = "aaaaaaaa-0000-0000-0000-000000000001"
AGENT_OID = "0f0f0f0f-1111-2222-3333-444444444444"
AGENT_USER = "00000000-0000-0000-0000-0000000000b1"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenService]:
    published = TokenService()
    fetches: list[str] = []

    def fetch(client: jwt.PyJWKClient) -> Any:
        fetches.append(client.uri)
        return published.jwks()

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch)
    yield published


def _tokens(users: dict[str, str] | None = None) -> EntraTokens:
    known = {AGENT_OID: AGENT_USER} if users is None else users
    return EntraTokens(ISSUER, [AUDIENCE], known.get, jwks_url="https://keys.example.test/keys")


def _refused(tokens: EntraTokens, token: str) -> UnauthorizedError:
    with pytest.raises(UnauthorizedError) as caught:
        tokens.caller(token)
    assert status_for(caught.value) == 401
    assert token not in caught.value.message
    return caught.value


def test_a_valid_user_token_names_its_systemuser(service: TokenService) -> None:
    token = service.user_token(ISSUER, AUDIENCE, AGENT_OID)
    assert _tokens().caller(token) == Caller(object_id=AGENT_OID, systemuser_id=AGENT_USER)


def test_a_token_from_another_issuer_is_refused(service: TokenService) -> None:
    other = "https://login.example.test/99999999-2222-3333-4444-555555555555/v2.0"
    refusal = _refused(_tokens(), service.user_token(other, AUDIENCE, AGENT_OID))
    assert "issuer" in refusal.message


def test_a_token_for_another_api_is_refused(service: TokenService) -> None:
    refusal = _refused(_tokens(), service.user_token(ISSUER, "api://someone-else", AGENT_OID))
    assert "not for this API" in refusal.message


def test_an_expired_token_is_refused(service: TokenService) -> None:
    two_hours_ago = time.time() - 7200
    token = service.user_token(ISSUER, AUDIENCE, AGENT_OID, lifetime=600, now=two_hours_ago)
    assert "expired" in _refused(_tokens(), token).message


def test_a_token_signed_with_another_key_is_refused(service: TokenService) -> None:
    impostor = TokenService()  # same claims, a key the tenant never published
    impostor.key_id = service.key_id
    assert (
        "not valid" in _refused(_tokens(), impostor.user_token(ISSUER, AUDIENCE, AGENT_OID)).message
    )


def test_a_token_naming_an_unpublished_key_is_refused(service: TokenService) -> None:
    impostor = TokenService()
    _refused(_tokens(), impostor.user_token(ISSUER, AUDIENCE, AGENT_OID))


def test_an_unsigned_or_garbled_token_is_refused(service: TokenService) -> None:
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "oid": AGENT_OID, "exp": time.time() + 600},
        key="",
        algorithm="none",
    )
    _refused(_tokens(), unsigned)
    _refused(_tokens(), "not-a-jwt")


def test_a_user_unknown_to_dataverse_is_refused(service: TokenService) -> None:
    token = service.user_token(ISSUER, AUDIENCE, AGENT_OID)
    assert "not a user" in _refused(_tokens(users={}), token).message


def test_dataverse_refusing_the_user_is_a_403_and_the_connector_keeps_its_502() -> None:
    refused = DataverseError("PATCH failed: HTTP 403", status=403, service_code="0x80040220")
    user = Caller(object_id=AGENT_OID, systemuser_id=AGENT_USER)
    with pytest.raises(ForbiddenError) as caught, user.acting():
        raise refused
    assert status_for(caught.value) == 403
    with pytest.raises(DataverseError) as kept, CONNECTOR.acting():
        raise refused
    assert status_for(kept.value) == 502


def test_the_body_names_the_agent_only_for_api_keys() -> None:
    user = Caller(object_id=AGENT_OID, systemuser_id=AGENT_USER)
    assert user.agent("00000000-0000-0000-0000-00000000aa01") == AGENT_USER
    assert CONNECTOR.agent("00000000-0000-0000-0000-00000000aa01") == (
        "00000000-0000-0000-0000-00000000aa01"
    )


def test_an_issuer_without_an_audience_is_a_configuration_error() -> None:
    from connector.errors import ConfigurationError
    from connector.settings import load_settings

    with pytest.raises(ConfigurationError):
        load_settings(env={"CONNECTOR_API__ENTRA_ISSUER": ISSUER})
    settings = load_settings(
        env={
            "CONNECTOR_API__ENTRA_ISSUER": ISSUER,
            "CONNECTOR_API__ENTRA_AUDIENCE": f"{AUDIENCE},x",
        }
    )
    assert settings.api.entra_audience == [AUDIENCE, "x"]


def test_a_token_without_the_delegated_scope_is_a_403(service: TokenService) -> None:
    for scope in (None, "User.Read", "access_as_user_x openid"):
        token = service.user_token(ISSUER, AUDIENCE, AGENT_OID, scope=scope)
        with pytest.raises(ForbiddenError) as caught:
            _tokens().caller(token)
        assert status_for(caught.value) == 403
        assert caught.value.code == "insufficient_scope"
        assert "access_as_user" in caught.value.message
        assert token not in caught.value.message


def test_the_scope_is_one_of_the_space_separated_scp_values(service: TokenService) -> None:
    token = service.user_token(ISSUER, AUDIENCE, AGENT_OID, scope="openid access_as_user")
    assert _tokens().caller(token).systemuser_id == AGENT_USER
    custom = EntraTokens(
        ISSUER,
        [AUDIENCE],
        {AGENT_OID: AGENT_USER}.get,
        jwks_url="https://keys.example.test/keys",
        scope="Sms.Act",
    )
    assert custom.caller(service.user_token(ISSUER, AUDIENCE, AGENT_OID, scope="Sms.Act"))
    with pytest.raises(ForbiddenError):
        custom.caller(service.user_token(ISSUER, AUDIENCE, AGENT_OID))


def test_the_scope_setting_defaults_and_refuses_a_blank_or_listed_value() -> None:
    from connector.errors import ConfigurationError
    from connector.settings import load_settings

    assert load_settings(env={}).api.entra_scope == "access_as_user"
    env = {"CONNECTOR_API__ENTRA_SCOPE": "Sms.Act"}
    assert load_settings(env=env).api.entra_scope == "Sms.Act"
    for bad in ("", "a b"):
        with pytest.raises(ConfigurationError):
            load_settings(env={"CONNECTOR_API__ENTRA_SCOPE": bad})
    with pytest.raises(ValueError, match="scope"):
        EntraTokens(ISSUER, [AUDIENCE], {AGENT_OID: AGENT_USER}.get, scope=" ")
