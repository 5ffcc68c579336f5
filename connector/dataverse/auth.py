"""Access tokens for the Dataverse Web API: the TokenProvider port and its two implementations.

:class:`MsalTokenProvider` is the production one: an MSAL confidential client (client
credentials grant) with a client secret, a PEM certificate or a PFX file (both read with
``cryptography``, so a wrong password fails here, naming the file). One
``ConfidentialClientApplication`` is made per provider, lazily on first use (MSAL does network
I/O in its constructor), and the composition root makes one provider per process, so MSAL's
token cache is reused: ``acquire_token_for_client`` answers from the cache and only asks the
identity provider when the token is within five minutes of expiry. On a 401 the client asks
for ``token(refresh=True)``, which drops the cached token first.

A failure becomes :class:`~connector.errors.AuthenticationError` naming tenant and client id,
never the secret. :class:`StaticTokenProvider` serves a fixed token (the emulator accepts any).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from connector.errors import AuthenticationError, ConfigurationError
from connector.log_config import get_logger
from connector.settings import DataverseSettings

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
_TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}
log = get_logger(__name__)


class TokenProvider(Protocol):
    """Where the bearer token for Dataverse comes from."""

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token; ``refresh`` forces a new one (after a 401)."""
        ...


class StaticTokenProvider:
    """A fixed bearer token (local mode: the emulator accepts any token)."""

    def __init__(self, token: SecretStr | str) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def token(self, *, refresh: bool = False) -> str:
        """The configured token (a refresh cannot produce another one)."""
        return self._token.get_secret_value()


def scope_for(org_url: str) -> str:
    """The client-credentials scope of an environment: ``<org url>/.default``."""
    return org_url.rstrip("/") + "/.default"


def certificate_credential(path: Path, password: SecretStr | None = None) -> dict[str, str]:
    """MSAL's certificate credential (unencrypted PEM key + SHA-1 thumbprint) from a file.

    ``.pfx``/``.p12`` files are read as PKCS#12, anything else as PEM holding the private key
    and the certificate.
    """
    secret = password.get_secret_value().encode() if password else None
    data = path.read_bytes()
    try:
        if path.suffix.lower() in {".pfx", ".p12"}:
            key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
        else:
            key = serialization.load_pem_private_key(data, secret)
            cert = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"cannot read the certificate {path.name}: wrong password or not a key and certificate"
        ) from exc
    if key is None or cert is None:
        raise ConfigurationError(f"{path.name} must hold both a private key and a certificate")
    return {"private_key": _pem(key), "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}  # noqa: S303 - SHA-1 thumbprint is what Entra ID identifies a certificate by


def _pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class MsalTokenProvider:
    """Client-credentials tokens from Entra ID through one MSAL confidential client."""

    def __init__(
        self,
        *,
        org_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: SecretStr | None = None,
        certificate: dict[str, str] | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        instance_discovery: bool | None = None,
        http_client: Any = None,
    ) -> None:
        if (client_secret is None) == (certificate is None):
            raise ConfigurationError("give exactly one of a client secret or a certificate")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope_for(org_url)
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._secret = client_secret
        self._certificate = certificate
        self._instance_discovery = instance_discovery
        self._http_client = http_client
        self._app: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: DataverseSettings, **kwargs: Any) -> MsalTokenProvider:
        """A provider for the configured app registration (secret or certificate)."""
        if settings.url is None or not settings.tenant_id or not settings.client_id:
            raise ConfigurationError("MSAL needs the Dataverse url, tenant_id and client_id")
        certificate = None
        if settings.client_secret is None and settings.certificate_path is not None:
            certificate = certificate_credential(
                settings.certificate_path, settings.certificate_password
            )
            if settings.certificate_thumbprint:
                certificate["thumbprint"] = settings.certificate_thumbprint
        return cls(
            org_url=str(settings.url),
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            certificate=certificate,
            **kwargs,
        )

    def token(self, *, refresh: bool = False) -> str:
        """A token from MSAL's cache, or a new one from the identity provider."""
        app = self._application()
        if refresh:
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            raise self._failure("the identity provider could not be reached", True) from exc
        if "access_token" not in result:
            error = str(result.get("error", "unknown_error"))
            description = str(result.get("error_description", "")).splitlines()[0:1]
            reason = f"{error}: {description[0]}" if description else error
            raise self._failure(reason, error in _TRANSIENT_ERRORS)
        log.debug("dataverse.token", source=result.get("token_source"), client_id=self.client_id)
        return str(result["access_token"])

    def _application(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = self._build()
            return self._app

    def _build(self) -> Any:
        credential: Any = (
            self._secret.get_secret_value() if self._secret is not None else self._certificate
        )
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                authority=self._authority,
                client_credential=credential,
                instance_discovery=self._instance_discovery,
                http_client=self._http_client,
            )
        except requests.RequestException as exc:
            raise self._failure("the authority could not be reached", True) from exc
        except ValueError as exc:
            raise self._failure(f"the authority was refused ({exc})", False) from exc

    def _failure(self, reason: str, transient: bool) -> AuthenticationError:
        return AuthenticationError(
            f"could not get a Dataverse token for client {self.client_id} in tenant "
            f"{self.tenant_id}: {reason}",
            transient=transient,
            details={"tenant_id": self.tenant_id, "client_id": self.client_id},
        )
