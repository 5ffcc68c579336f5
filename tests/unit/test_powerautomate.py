"""The Power Automate custom connector: valid Swagger 2.0, every operation carrying the Power
Platform extensions, and the checked-in files exactly what ``export`` makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from connector.api.powerautomate import ACTIONS, connector_files

CHECKED_IN = Path(__file__).resolve().parents[2] / "integrations" / "powerautomate"
FILES = connector_files()
DEFINITION: dict[str, Any] = json.loads(FILES["apiDefinition.swagger.json"])
OPERATIONS = [
    (path, method, op)
    for path, item in DEFINITION["paths"].items()
    for method, op in item.items()
    if method in {"get", "post", "put", "patch", "delete"}
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DEFINITION["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_checked_in_files_are_what_export_makes(name: str) -> None:
    stored = (CHECKED_IN / name).read_text(encoding="utf-8")
    assert stored == FILES[name], (
        f"integrations/powerautomate/{name} is stale: run "
        "`connector powerautomate export --out integrations/powerautomate`"
    )


def test_the_definition_is_valid_swagger_2() -> None:
    validate(DEFINITION)
    assert DEFINITION["swagger"] == "2.0"


def test_every_action_the_connector_offers_is_there() -> None:
    assert sorted(op["operationId"] for _, _, op in OPERATIONS) == sorted(ACTIONS)


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v)[:40])
def test_every_operation_carries_the_power_platform_extensions(
    path: str, method: str, op: dict[str, Any]
) -> None:
    assert op["summary"][0].isupper() and not op["summary"].endswith(".")
    words = op["summary"].split()
    assert not all(w[0].isupper() for w in words[1:] if w[0].isalpha()) or len(words) < 3
    assert op["description"] and op["x-ms-visibility"] in {"important", "advanced", "internal"}
    for param in op["parameters"]:
        if param["in"] == "body":
            continue
        assert param["x-ms-summary"] and param["description"]
        if param["in"] == "path":
            assert param["x-ms-url-encoding"] == "single"
    answers = {code: r for code, r in op["responses"].items() if code.startswith("2")}
    assert answers, "no success response"
    for code, answer in answers.items():
        if code != "204":
            schema = _resolve(answer["schema"])
            for name, prop in schema.get("properties", {}).items():
                assert prop.get("x-ms-summary") or "$ref" in prop, (code, name)


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v)[:40])
def test_every_answer_is_described_field_by_field(
    path: str, method: str, op: dict[str, Any]
) -> None:
    """A free-form object gives a flow no dynamic content to pick from."""
    for code, answer in op["responses"].items():
        if code.startswith("2") and code != "204":
            schema = _resolve(answer["schema"])
            assert schema.get("properties"), (op["operationId"], code)
            assert schema.get("additionalProperties") is not True, (op["operationId"], code)


def test_consent_answers_show_state_evidence_and_history() -> None:
    ops = {op["operationId"]: op for _, _, op in OPERATIONS}
    status = _resolve(ops["getConsent"]["responses"]["200"]["schema"])
    assert set(status["properties"]) == {"phone", "consents", "history"}
    current = _resolve(status["properties"]["consents"]["items"])
    assert {"configuration_id", "purpose", "status", "expired", "since", "expires_at"} <= set(
        current["properties"]
    )
    evidence = _resolve(current["properties"]["evidence"])
    assert set(evidence["properties"]) == {"at", "source", "message_id", "text"}
    opt_in = _resolve(ops["requestOptIn"]["responses"]["202"]["schema"])
    assert {"phone", "confirmation_sent", "status"} <= set(opt_in["properties"])
    assert ops["recordOptOut"]["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/ConsentStatusView"
    }


def test_triggers_are_webhooks_with_a_notification_url_and_content() -> None:
    triggers = {op["operationId"]: (path, op) for path, _, op in OPERATIONS if "x-ms-trigger" in op}
    assert sorted(triggers) == ["whenSmsReceived", "whenStatusChanges"]
    for path, op in triggers.values():
        assert op["x-ms-trigger"] == "single"
        assert "Location" in op["responses"]["201"]["headers"]
        content = DEFINITION["paths"][path]["x-ms-notification-content"]["schema"]
        assert "data" in _resolve(content)["properties"]
        (body,) = [p for p in op["parameters"] if p["in"] == "body"]
        properties = _resolve(body["schema"])["properties"]
        urls = [n for n, p in properties.items() if p.get("x-ms-notification-url")]
        assert urls == ["callback_url"]
        assert properties["callback_url"]["x-ms-visibility"] == "internal"
    delete = DEFINITION["paths"]["/api/v1/subscriptions/{subscription_id}"]["delete"]
    assert delete["x-ms-visibility"] == "internal"


def test_senders_and_templates_are_picked_from_lists() -> None:
    dynamic = {}
    for _, _, op in OPERATIONS:
        for param in op["parameters"]:
            if param["in"] == "body":
                for name, prop in _resolve(param["schema"]).get("properties", {}).items():
                    if "x-ms-dynamic-values" in prop:
                        dynamic[(op["operationId"], name)] = prop["x-ms-dynamic-values"]
    assert dynamic[("sendMessage", "configuration_id")]["operationId"] == "listConfigurations"
    assert dynamic[("sendFromTemplate", "template_id")]["operationId"] == "listTemplates"
    assert dynamic[("sendBulk", "template_id")]["value-path"] == "id"


def test_the_api_key_is_the_connection() -> None:
    assert DEFINITION["securityDefinitions"]["api_key"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    properties = json.loads(FILES["apiProperties.json"])["properties"]
    assert properties["connectionParameters"]["api_key"]["type"] == "securestring"


def test_the_host_comes_from_the_given_url() -> None:
    made = json.loads(connector_files("https://sms.contoso.com/base")["apiDefinition.swagger.json"])
    assert (made["host"], made["basePath"], made["schemes"]) == (
        "sms.contoso.com",
        "/base",
        ["https"],
    )
