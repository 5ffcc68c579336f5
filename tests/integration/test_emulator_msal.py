"""MSAL's real client-credentials flow against the emulator's token service over HTTPS."""

from __future__ import annotations

from pathlib import Path

import msal
import pytest
import requests

from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.tls import make_certificate, running_tls
from connector.emulators.dataverse.token_service import TokenService

# The server closes each connection itself: a TLS keep-alive connection that the client drops
# without close_notify holds up uvicorn's graceful shutdown for about 10 s.
CLOSE = {"Connection": "close"}


def test_msal_gets_a_token_that_the_web_api_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certfile, keyfile = make_certificate(tmp_path)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's verify=, so a
    # machine-wide bundle would hide MSAL's verify argument: point them at our certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certfile))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(certfile))
    tokens = TokenService(clients={"client-1": "s3cret"}, validate=True)
    with running_tls(create_emulator_app(tokens=tokens), certfile, keyfile) as url:
        app = msal.ConfidentialClientApplication(
            "client-1",
            client_credential="s3cret",
            authority=f"{url}/tenant-1",
            instance_discovery=False,
            verify=str(certfile),
        )
        result = app.acquire_token_for_client(scopes=[f"{url}/.default"])
        app.http_client.close()  # no idle keep-alive connection to hold up the server's exit
        assert "access_token" in result, result
        api = f"{url}/api/data/v9.2/WhoAmI"
        good = requests.get(
            api,
            headers={"Authorization": f"Bearer {result['access_token']}", **CLOSE},
            verify=str(certfile),
            timeout=10,
        )
        assert good.status_code == 200
        forged = requests.get(
            api,
            headers={"Authorization": "Bearer forged", **CLOSE},
            verify=str(certfile),
            timeout=10,
        )
        assert forged.status_code == 401
        other = msal.ConfidentialClientApplication(
            "client-1",
            client_credential="wrong",
            authority=f"{url}/tenant-1",
            instance_discovery=False,
            verify=str(certfile),
        )
        wrong = other.acquire_token_for_client(scopes=[f"{url}/.default"])
        other.http_client.close()
        assert wrong.get("error") == "invalid_client"
