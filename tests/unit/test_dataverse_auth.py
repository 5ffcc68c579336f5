"""MSAL token provider exercised for real against mocked authority endpoints (responses)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from connector.dataverse.auth import (
    MsalTokenProvider,
    StaticTokenProvider,
    certificate_credential,
    scope_for,
)
from connector.errors import AuthenticationError, ConfigurationError
from connector.settings import load_settings

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
AUTHORITY = f"https://login.microsoftonline.com/{TENANT}"
TOKEN_URL = f"{AUTHORITY}/oauth2/v2.0/token"
ORG = "https://contoso.crm.dynamics.com"
SECRET = "s3cr3t-value-never-logged"


def mock_authority(rsps: responses.RequestsMock, *tokens: dict[str, object]) -> None:
    """OpenID discovery plus a token endpoint answering ``tokens`` in turn."""
    rsps.get(
        f"{AUTHORITY}/v2.0/.well-known/openid-configuration",
        json={
            "issuer": f"{AUTHORITY}/v2.0",
            "authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/authorize",
            "token_endpoint": TOKEN_URL,
        },
    )
    for token in tokens:
        status = 400 if "error" in token else 200
        rsps.post(TOKEN_URL, json=token, status=status)


def _token(value: str, expires_in: int = 3599) -> dict[str, object]:
    return {"token_type": "Bearer", "expires_in": expires_in, "access_token": value}


def _form(call: responses.Call) -> dict[str, list[str]]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    return parse_qs(text)


def _provider(**kwargs: object) -> MsalTokenProvider:
    return MsalTokenProvider(
        org_url=ORG + "/",
        tenant_id=TENANT,
        client_id=CLIENT,
        instance_discovery=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_secret_token_is_requested_with_the_org_scope_and_reused_from_cache() -> None:
    with responses.RequestsMock() as rsps:
        mock_authority(rsps, _token("tok-1"))
        provider = _provider(client_secret=SecretStr(SECRET))
        assert provider.token() == "tok-1"
        assert provider.token() == "tok-1"
        token_calls = [c for c in rsps.calls if c.request.url == TOKEN_URL]
        assert len(token_calls) == 1
        form = _form(token_calls[0])
        assert form["scope"] == [f"{ORG}/.default"]
        assert form["grant_type"] == ["client_credentials"]
        assert form["client_id"] == [CLIENT]
        assert form["client_secret"] == [SECRET]


def test_token_near_expiry_is_refreshed_from_the_identity_provider() -> None:
    with responses.RequestsMock() as rsps:
        mock_authority(rsps, _token("short", expires_in=120), _token("fresh"))
        provider = _provider(client_secret=SecretStr(SECRET))
        assert provider.token() == "short"
        assert provider.token() == "fresh"  # under 5 minutes left: MSAL asks again
        assert provider.token() == "fresh"
        assert len([c for c in rsps.calls if c.request.url == TOKEN_URL]) == 2


def test_forced_refresh_after_a_401_drops_the_cached_token() -> None:
    with responses.RequestsMock() as rsps:
        mock_authority(rsps, _token("old"), _token("new"))
        provider = _provider(client_secret=SecretStr(SECRET))
        assert provider.token() == "old"
        assert provider.token(refresh=True) == "new"


def test_bad_secret_names_tenant_and_client_never_the_secret() -> None:
    with responses.RequestsMock() as rsps:
        mock_authority(
            rsps,
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            },
        )
        provider = _provider(client_secret=SecretStr(SECRET))
        with pytest.raises(AuthenticationError) as caught:
            provider.token()
    text = str(caught.value) + json.dumps(caught.value.to_dict())
    assert TENANT in text and CLIENT in text and "invalid_client" in text
    assert SECRET not in text
    assert not caught.value.transient


def test_unknown_tenant_fails_at_discovery_with_a_clear_error() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{AUTHORITY}/v2.0/.well-known/openid-configuration",
            status=400,
            json={"error": "invalid_tenant", "error_description": "AADSTS90002: not found"},
        )
        provider = _provider(client_secret=SecretStr(SECRET))
        with pytest.raises(AuthenticationError) as caught:
            provider.token()
    assert TENANT in str(caught.value) and SECRET not in str(caught.value)


def _self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _assertion_header(call: responses.Call) -> dict[str, str]:
    form = _form(call)
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assert "client_secret" not in form
    head = form["client_assertion"][0].split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


@pytest.mark.parametrize("kind", ["pem", "pfx"])
def test_certificate_credentials_sign_an_assertion_with_the_thumbprint(
    kind: str, tmp_path: Path
) -> None:
    key, cert = _self_signed()
    password = b"pfx-pass"
    if kind == "pem":
        path = tmp_path / "app.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
    else:
        path = tmp_path / "app.pfx"
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"app", key, cert, None, serialization.BestAvailableEncryption(password)
            )
        )
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": ORG,
            "CONNECTOR_DATAVERSE__TENANT_ID": TENANT,
            "CONNECTOR_DATAVERSE__CLIENT_ID": CLIENT,
            "CONNECTOR_DATAVERSE__CERTIFICATE_PATH": str(path),
            "CONNECTOR_DATAVERSE__CERTIFICATE_PASSWORD": password.decode(),
        }
    )
    with responses.RequestsMock() as rsps:
        mock_authority(rsps, _token("cert-token"))
        provider = MsalTokenProvider.from_settings(settings.dataverse, instance_discovery=False)
        assert provider.token() == "cert-token"
        header = _assertion_header(rsps.calls[-1])
    sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - Entra ID's thumbprint
    assert base64.urlsafe_b64decode(header["x5t"] + "=" * (-len(header["x5t"]) % 4)) == sha1


def test_wrong_certificate_password_is_a_configuration_error(tmp_path: Path) -> None:
    key, cert = _self_signed()
    path = tmp_path / "app.pfx"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, cert, None, serialization.BestAvailableEncryption(b"right")
        )
    )
    with pytest.raises(ConfigurationError, match=r"app\.pfx"):
        certificate_credential(path, SecretStr("wrong"))


def test_static_provider_and_scope() -> None:
    assert StaticTokenProvider("emulator").token(refresh=True) == "emulator"
    assert scope_for("https://org.crm.dynamics.com/") == "https://org.crm.dynamics.com/.default"
    with pytest.raises(ConfigurationError):
        MsalTokenProvider(org_url=ORG, tenant_id=TENANT, client_id=CLIENT)
