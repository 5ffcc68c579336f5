"""Local mode: the whole product on a laptop, no accounts (no Dataverse URL configured).

``connector serve`` with no Dataverse URL starts the Dataverse emulator in-process on its own
loopback port (its rows in a SQLite file beside the state store, so they survive a restart),
applies the solution schema, seeds demo data (contacts, accounts, leads, an opportunity, a
configuration on the simulated provider with its record types and keywords, templates),
syncs the phone index, starts the Twilio-compatible simulator, and prints what to try. The
emulator's address is written to ``<state>.local.json`` so other commands of the same
directory (``connector export messages``) reach it while ``serve`` runs. Local mode listens
on loopback unless asked otherwise; asked to listen beyond it, it signs and verifies webhooks
with a random token made for the run (:func:`private_token`), never the published one, and
keeps it in that file for ``connector simulate``. Seeding is
idempotent: fixed ids and upserts, so a restart adds nothing. The simulator posts the
inbound messages injected into it (``POST /_simulator/inbound``) to the connector, signed,
and hosts their media.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from connector.bootstrap.server_thread import ServerThread
from connector.crm import tables
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.dataverse.client import DataverseClient
from connector.domain.model import MessageCategory, Provider, Template
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.errors import ConfigurationError
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.schema.installer import Installer
from connector.schema.spec import load_schema
from connector.secret_box import SecretBox
from connector.services.setup import SetupRequest, run_setup
from connector.settings import Settings

DEMO_SENDER = "+14155550100"
DEMO_CUSTOMER = "+14155550123"
_ID = "00000000-0000-4000-8000-0000000{:05d}"


@dataclass(frozen=True, slots=True)
class DemoRow:
    """One seeded CRM row."""

    entity_set: str
    id: str
    body: dict[str, object]


def _id(n: int) -> str:
    return _ID.format(n)


DEMO_ROWS: tuple[DemoRow, ...] = (
    DemoRow("accounts", _id(1), {"name": "Contoso Pharmaceuticals", "telephone1": "4155550161"}),
    DemoRow("accounts", _id(2), {"name": "Fabrikam", "telephone1": "+44 20 7946 0958"}),
    DemoRow(
        "contacts",
        _id(11),
        {
            "firstname": "Alice",
            "lastname": "Nguyen",
            "mobilephone": "(415) 555-0123",
            "parentcustomerid_account@odata.bind": f"/accounts({_id(1)})",
        },
    ),
    DemoRow(
        "contacts",
        _id(12),
        {"firstname": "Bob", "lastname": "Smith", "mobilephone": "415.555.0124"},
    ),
    DemoRow(
        "leads",
        _id(21),
        {
            "subject": "Interested in SMS",
            "firstname": "Carol",
            "lastname": "Diaz",
            "mobilephone": "+1 415 555 0125",
        },
    ),
    DemoRow(
        "leads",
        _id(22),
        {
            "subject": "Trade show",
            "firstname": "Dan",
            "lastname": "Ito",
            "telephone1": "0044 20 7946 0959",
        },
    ),
    DemoRow(
        "opportunities",
        _id(31),
        {"name": "Contoso renewal", "parentcontactid@odata.bind": f"/contacts({_id(11)})"},
    ),
)
DEMO_TEMPLATES: tuple[tuple[str, Template], ...] = (
    (
        _id(41),
        Template("Appointment reminder", "Hi {firstname|there}, see you tomorrow.", published=True),
    ),
    (
        _id(42),
        Template(
            "Spring offer",
            "{firstname|Hello}, 10% off this week. Reply STOP to opt out.",
            category=MessageCategory.COMMERCIAL,
            published=True,
        ),
    ),
)


def local_file(settings: Settings, suffix: str) -> Path:
    """A file beside the SQLite state store (``connector-state.<suffix>``), else in ``.``."""
    parsed = make_url(settings.state.url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        state = Path(str(parsed.database))
        return state.with_name(f"{state.stem}.{suffix}")
    return Path(f"connector-state.{suffix}")


def local_dataverse_url(settings: Settings) -> str:
    """The running local emulator's URL (``ConfigurationError`` if local mode is not running)."""
    path = local_file(settings, "local.json")
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["dataverse_url"])
    except (OSError, ValueError, KeyError):
        raise ConfigurationError(
            "no Dataverse URL configured and no local mode running here: "
            "start `connector serve` first (or set CONNECTOR_DATAVERSE__URL)"
        ) from None


def local_value(settings: Settings, name: str) -> str | None:
    """A value the running local mode published (``simulator_url``, ``public_base_url``)."""
    path = local_file(settings, "local.json")
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def seed_demo(client: DataverseClient, public_base_url: str | None) -> str:
    """Apply the schema and seed the demo rows; returns the demo configuration's id."""
    Installer(client, load_schema(), poll_interval=0.05).apply()
    for row in DEMO_ROWS:
        client.upsert(row.entity_set, row.id, row.body)
    for template_id, template in DEMO_TEMPLATES:
        client.upsert(tables.TEMPLATE.entity_set, template_id, tables.template_to_row(template))
    request = SetupRequest(
        sender=DEMO_SENDER,
        provider=Provider.SIMULATOR,
        account_sid=LOCAL_ACCOUNT_SID,
        default_country="US",
        name="Demo sender (simulated)",
        public_base_url=public_base_url,
    )
    box = SecretBox([Fernet.generate_key().decode()])  # nothing secret is stored in demo mode
    result = run_setup(request, DataverseConfigurationStore(client), box)
    if result.configuration.id is None:
        raise ConfigurationError("the demo configuration was not stored")
    return result.configuration.id


@dataclass
class LocalMode:
    """The in-process emulator (and its descriptor file) of a local-mode run."""

    emulator: ServerThread
    descriptor: Path
    configuration_id: str = ""
    simulator: ServerThread | None = None
    engine: SimulatorEngine | None = None

    @property
    def dataverse_url(self) -> str:
        """The emulator's base URL."""
        return self.emulator.url

    @property
    def simulator_url(self) -> str | None:
        """The simulated provider's base URL (its Twilio-compatible REST API)."""
        return self.simulator.url if self.simulator else None

    def start_simulator(
        self,
        inbound_url: str,
        auth_token: str = LOCAL_AUTH_TOKEN,
        public_base_url: str | None = None,
    ) -> str:
        """Start the Twilio-compatible simulator, posting inbound messages to ``inbound_url``
        (the demo sender's ``SmsUrl``) signed with ``auth_token`` (also the token its REST API
        and media host accept); add its URL (and where the connector listens) to the
        descriptor for this folder's other commands (``connector send``, a separate
        ``connector worker``)."""
        options = SimulatorOptions(
            inbound_url=inbound_url, auth_token=auth_token, numbers={DEMO_SENDER: None}
        )
        self.engine = SimulatorEngine(options)
        self.simulator = ServerThread(create_simulator_app(self.engine)).start()
        described = json.loads(self.descriptor.read_text(encoding="utf-8"))
        described.update(simulator_url=self.simulator.url, public_base_url=public_base_url)
        self.descriptor.write_text(json.dumps(described), encoding="utf-8")  # mode kept
        return self.simulator.url

    def close(self) -> None:
        """Stop the servers and remove the descriptor."""
        if self.simulator is not None:
            self.simulator.stop()
        if self.engine is not None:
            self.engine.close()
        self.emulator.stop()
        self.descriptor.unlink(missing_ok=True)


def start_local_dataverse(settings: Settings, signing_token: str | None = None) -> LocalMode:
    """Start the emulator on a free loopback port, persisted beside the state store.

    The descriptor file tells the other commands of this directory where it runs, and the
    signing token generated for this run (:func:`private_token`), readable by the user only.
    """
    db = local_file(settings, "emulator.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    emulator = ServerThread(create_emulator_app(db_path=str(db), token_required=False)).start()
    descriptor = local_file(settings, "local.json")
    described: dict[str, str] = {"dataverse_url": emulator.url}
    if signing_token is not None:
        described["signing_token"] = signing_token
    descriptor.unlink(missing_ok=True)
    handle = os.open(descriptor, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(json.dumps(described))
    return LocalMode(emulator=emulator, descriptor=descriptor)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.x, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or an address of an interface: reachable from elsewhere


def private_token(settings: Settings, host: str) -> tuple[Settings, str | None]:
    """Local mode asked to listen beyond loopback: settings with a random signing token.

    The simulator's published token (in the source code) must not sign webhooks that come
    from the network. When local mode listens on anything but loopback and no Twilio token
    is configured, a random one made for this run replaces it (the settings' token verifies
    webhooks, signs the embedded simulator's posts and authenticates to it); the token is
    returned so the caller can say so and keep it for ``connector simulate``.
    """
    if not settings.local_mode or is_loopback(host) or settings.twilio.auth_token is not None:
        return settings, None
    token = secrets.token_hex(16)
    twilio = settings.twilio.model_copy(update={"auth_token": SecretStr(token)})
    return settings.model_copy(update={"twilio": twilio}), token


def local_signing_token(settings: Settings) -> str | None:
    """The signing token the running local mode of this directory generated, if any."""
    try:
        described = json.loads(local_file(settings, "local.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    token = described.get("signing_token") if isinstance(described, dict) else None
    return str(token) if token else None


def cli_command(argv0: str | None = None) -> str:
    """How the user can run ``connector`` again: the script as invoked (``.venv/bin/connector``
    after ``make run``, where ``connector`` is not on the PATH), else plain ``connector``."""
    invoked = sys.argv[0] if argv0 is None else argv0
    return shlex.quote(invoked) if Path(invoked).name == "connector" else "connector"


def try_this(base_url: str, port_is_default: bool) -> list[str]:
    """The lines local mode prints: what to run next."""
    url = "" if port_is_default else f" --url {base_url}"
    command = cli_command()
    return [
        "Local mode: embedded Dataverse emulator and simulated SMS provider (no accounts needed).",
        f"Demo sender {DEMO_SENDER}; Alice Nguyen (contact) texts from {DEMO_CUSTOMER}.",
        f"Messages page (opens signed in from this machine): {base_url}/messages",
        "Try, in another terminal of this directory:",
        f"  {command} simulate inbound --from {DEMO_CUSTOMER} --to {DEMO_SENDER}"
        f' --body "Hi, is my order ready?"{url}',
        f'  {command} send --to {DEMO_CUSTOMER} --body "Yes, it is ready to collect."',
        f"  {command} export messages",
    ]
