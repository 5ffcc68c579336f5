"""``connector config check``'s production checks: what in the settings, the configurations
and the provider accounts will break once real traffic arrives.

Each problem is a :class:`Finding`: a severity (``error`` breaks something, ``warning`` may
or could not be checked), a stable ``code`` for scripts, and a sentence saying what is wrong
and what to do. The settings checks (:func:`settings_findings`) and the judgement of one
provider number (:func:`number_findings`) are pure; :func:`run_checks` reads the active
configurations from Dataverse (through the composition root) and asks Twilio, for each
Twilio configuration, where its number posts inbound messages (``SmsUrl``). A provider that
cannot be asked is a warning saying so, never a crash. Secrets never appear in a finding.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import requests

from connector.bootstrap import local_mode
from connector.bootstrap.root import build
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import IncomingNumber
from connector.errors import ConnectorError
from connector.providers.twilio.client import TwilioProvider
from connector.providers.twilio.endpoints import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    inbound_webhook_url,
)
from connector.secret_box import SecretBox, looks_encrypted
from connector.settings import Settings


class Severity(enum.StrEnum):
    """How bad a finding is: ``error`` fails the check (exit code 1)."""

    ERROR = "error"
    WARNING = "warning"


NO_PUBLIC_BASE_URL = "no_public_base_url"
NO_SECRET_KEYS = "no_secret_keys"  # noqa: S105 - a finding code, not a secret
NO_API_KEYS = "no_api_keys"
CONFIGURATIONS_UNREAD = "configurations_unread"
TWILIO_SMS_URL_MISMATCH = "twilio_sms_url_mismatch"
TWILIO_NUMBER_NOT_IN_ACCOUNT = "twilio_number_not_in_account"
TWILIO_NOT_ASKED = "twilio_not_asked"
QUEUE_NOT_SHARED = "queue_not_shared"
MICROSOFT_SIGNIN_WITHOUT_HTTPS = "microsoft_signin_without_https"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that will break (or could not be checked), and what to do about it."""

    severity: Severity
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready values."""
        return {"severity": self.severity.value, "code": self.code, "message": self.message}


def failed(findings: Sequence[Finding]) -> bool:
    """Whether any finding is an error."""
    return any(finding.severity is Severity.ERROR for finding in findings)


# -- the settings alone (pure) ------------------------------------------------------------


def settings_findings(settings: Settings) -> list[Finding]:
    """What the settings alone say will break: no public base URL outside local mode, no
    secret keys, no API keys while the server listens beyond loopback, Sign in with Microsoft
    on a public URL that is not https."""
    findings: list[Finding] = []
    production = not settings.local_mode
    if production and settings.public_base_url is None:
        findings.append(
            Finding(
                Severity.ERROR,
                NO_PUBLIC_BASE_URL,
                "CONNECTOR_PUBLIC_BASE_URL is not set: every webhook from a real provider "
                "will fail its signature check (the signature covers the public URL the "
                "provider posts to). Set it to the HTTPS address providers reach the "
                "connector at, e.g. https://sms.contoso.com.",
            )
        )
    if not settings.secret_keys:
        findings.append(
            Finding(
                Severity.ERROR if production else Severity.WARNING,
                NO_SECRET_KEYS,
                "CONNECTOR_SECRET_KEYS is not set: provider secrets typed into Dataverse "
                "cannot be encrypted, and the Dataverse webhook key and event subscription "
                "secrets cannot be stored. Make a key with `connector config new-key` and "
                "set it.",
            )
        )
    host = settings.server.host
    if not settings.api.keys and not local_mode.is_loopback(host):
        findings.append(
            Finding(
                Severity.ERROR if production else Severity.WARNING,
                NO_API_KEYS,
                f"CONNECTOR_API__KEYS is not set while the server listens on {host} "
                "(CONNECTOR_SERVER__HOST), beyond this machine: every API call will be "
                "refused, so Power Automate and other callers cannot use the API. Set one or "
                "more keys (comma-separated), or listen on 127.0.0.1 behind a proxy.",
            )
        )
    public = str(settings.public_base_url or "")
    if settings.api.signin_authority() and public and not public.startswith("https://"):
        findings.append(
            Finding(
                Severity.ERROR,
                MICROSOFT_SIGNIN_WITHOUT_HTTPS,
                f"Sign in with Microsoft is configured but the public URL {public} is not "
                "https: Entra ID accepts only https redirect URIs (beyond localhost) and the "
                "sign-in's cookie is Secure, so no browser can finish signing in. Serve the "
                "page over https.",
            )
        )
    return findings + fleet_findings(settings)


def fleet_findings(settings: Settings) -> list[Finding]:
    """A shared PostgreSQL state store with the queue still a SQLite file on each machine:
    work accepted on one machine reaches workers elsewhere only through the minute sweeps."""
    if not settings.state.url.startswith("postgresql") or settings.queue.url:
        return []
    return [
        Finding(
            Severity.WARNING,
            QUEUE_NOT_SHARED,
            "The state store is PostgreSQL (shared by a fleet) but CONNECTOR_QUEUE__URL is "
            "not set: each machine has its own SQLite queue, so a message accepted by a web "
            "process reaches a worker on another machine only with the once-a-minute sweep. "
            "Set CONNECTOR_QUEUE__URL=redis://host:6379/0 on every process of the fleet.",
        )
    ]


# -- one provider number (pure, the look-up injected) -------------------------------------


def _label(configuration: Configuration) -> str:
    return f'{configuration.sender_number} (configuration "{configuration.name}")'


def number_findings(
    configuration: Configuration,
    expected_url: str,
    lookup: Callable[[], IncomingNumber | None],
) -> list[Finding]:
    """Whether the configuration's number posts inbound messages to ``expected_url``.

    ``lookup`` asks the provider for the number (None: the account has no such number); a
    :class:`~connector.errors.ConnectorError` it raises becomes a warning that the provider
    could not be asked.
    """
    label = _label(configuration)
    try:
        number = lookup()
    except ConnectorError as exc:
        return [not_asked(configuration, expected_url, exc.message)]
    if number is None:
        account = configuration.account_id or "the configured account"
        return [
            Finding(
                Severity.ERROR,
                TWILIO_NUMBER_NOT_IN_ACCOUNT,
                f"Twilio account {account} has no number {label}: nothing can be sent from "
                "it or received on it. Check the configuration's sender number and account "
                "SID.",
            )
        ]
    if number.sms_url == expected_url:
        return []
    now = f"posts inbound messages to {number.sms_url}" if number.sms_url else "has no SmsUrl"
    return [
        Finding(
            Severity.ERROR,
            TWILIO_SMS_URL_MISMATCH,
            f"Twilio number {label} {now}, not to {expected_url}: messages to it will not "
            "reach the connector. In the Twilio console set the number's \"A message comes "
            f'in" webhook (its SmsUrl) to {expected_url} with HTTP POST.',
        )
    ]


def not_asked(configuration: Configuration, expected_url: str | None, reason: str) -> Finding:
    """The warning for a number whose provider could not be asked."""
    by_hand = (
        f" Check by hand that its inbound webhook URL (SmsUrl) is {expected_url}."
        if expected_url
        else ""
    )
    return Finding(
        Severity.WARNING,
        TWILIO_NOT_ASKED,
        f"Twilio could not be asked about {_label(configuration)}: {reason.rstrip('.')}." + by_hand,
    )


# -- wiring: credentials, Dataverse, Twilio ----------------------------------------------


def twilio_credentials(settings: Settings, configuration: Configuration) -> tuple[str, str] | str:
    """``(account_sid, auth_token)`` to ask Twilio about the configuration's number with, or
    the reason there are none: the configuration's own stored token (decrypted with
    ``CONNECTOR_SECRET_KEYS``), else the settings' token for that account, else in local mode
    the simulator's."""
    twilio = settings.twilio
    account = configuration.account_id or twilio.account_sid
    if account is None and settings.local_mode:
        account = LOCAL_ACCOUNT_SID
    if account is None:
        return "no account SID on the configuration nor in CONNECTOR_TWILIO__ACCOUNT_SID"
    if configuration.secret:
        return _own_token(settings, account, configuration.secret)
    if twilio.auth_token is not None and twilio.account_sid in (None, account):
        return account, twilio.auth_token.get_secret_value()
    if settings.local_mode and account == LOCAL_ACCOUNT_SID:
        return account, LOCAL_AUTH_TOKEN
    return f"no auth token for account {account} (run `connector setup --auth-token` for it)"


def _own_token(settings: Settings, account: str, stored: str) -> tuple[str, str] | str:
    """The configuration's own token, or why it cannot be read."""
    if not looks_encrypted(stored):
        return account, stored  # typed in plain by an admin
    if not settings.secret_keys:
        return "its stored auth token cannot be decrypted without CONNECTOR_SECRET_KEYS"
    try:
        return account, SecretBox(settings.secret_keys).decrypt(stored)
    except ConnectorError as exc:
        return exc.message


ProviderFactory = Callable[[str, str], TwilioProvider]


def twilio_factory(api_base_url: str | None) -> ProviderFactory:
    """Twilio providers for an account (the simulator's API when ``api_base_url`` is set),
    trying each question twice at most."""

    def make(account_sid: str, auth_token: str) -> TwilioProvider:
        return TwilioProvider(account_sid, auth_token, api_base_url=api_base_url, max_attempts=2)

    return make


def webhook_findings(
    settings: Settings,
    configurations: Sequence[Configuration],
    public_base_url: str | None,
    make_provider: ProviderFactory,
) -> list[Finding]:
    """For each active Twilio (or simulated) configuration: where its number posts inbound
    messages, compared with ``<public base URL>/webhooks/twilio/messages``."""
    findings: list[Finding] = []
    expected = inbound_webhook_url(public_base_url) if public_base_url else None
    for configuration in configurations:
        if not configuration.active or configuration.provider not in (
            Provider.TWILIO,
            Provider.SIMULATOR,
        ):
            continue
        if expected is None:
            continue  # no public base URL: already an error, nothing to compare with
        credentials = twilio_credentials(settings, configuration)
        if isinstance(credentials, str):
            findings.append(not_asked(configuration, expected, credentials))
            continue
        provider = make_provider(*credentials)
        lookup = partial(provider.incoming_number, configuration.sender_number)
        findings += number_findings(configuration, expected, lookup)
    return findings


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every finding, and whether Dataverse and the providers were asked."""

    findings: tuple[Finding, ...]
    online: bool

    @property
    def failed(self) -> bool:
        """Whether any finding is an error (the command then exits 1)."""
        return failed(self.findings)


def run_checks(settings: Settings, *, offline: bool = False) -> CheckReport:
    """Every check: the settings, then (unless ``offline``) the active configurations read
    from Dataverse and each Twilio number's inbound webhook URL asked from Twilio."""
    findings = settings_findings(settings)
    if offline:
        return CheckReport(tuple(findings), online=False)
    public = str(settings.public_base_url) if settings.public_base_url else None
    api_base = str(settings.twilio.api_base_url) if settings.twilio.api_base_url else None
    if settings.local_mode:  # the running local mode of this directory, if any
        public = public or local_mode.local_value(settings, "public_base_url")
        api_base = local_mode.local_value(settings, "simulator_url") or api_base
    connector = build(settings)
    try:
        configurations = connector.configuration_directory.active_configurations()
    except (ConnectorError, requests.RequestException) as exc:
        reason = exc.message if isinstance(exc, ConnectorError) else type(exc).__name__
        findings.append(
            Finding(
                Severity.WARNING,
                CONFIGURATIONS_UNREAD,
                f"The configurations could not be read from Dataverse: {reason.rstrip('.')}. "
                "Their provider numbers were not checked; run again when Dataverse answers "
                "(or with --offline to check the settings alone).",
            )
        )
        return CheckReport(tuple(findings), online=True)
    finally:
        connector.close()
    findings += webhook_findings(settings, configurations, public, twilio_factory(api_base))
    return CheckReport(tuple(findings), online=True)
