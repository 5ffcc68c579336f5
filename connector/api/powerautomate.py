"""The Power Automate custom connector, made from the app's own OpenAPI 3 document.

Power Platform custom connectors import Swagger 2.0 only, so :func:`swagger` converts the
document FastAPI builds from the routes (one source of truth: a route, its models and their
titles and descriptions) into ``apiDefinition.swagger.json`` with the Power Platform
extensions: ``x-ms-summary`` from each parameter's and property's title, ``x-ms-visibility``
from :data:`ACTIONS` (which operations are actions, and how prominent), ``x-ms-url-encoding``
on path parameters, ``x-ms-dynamic-values`` where a maker picks a sender or a template,
``x-ms-trigger`` and ``x-ms-notification-content`` on the webhook triggers, and the API key
as the connection's security. :func:`api_properties` and :data:`MAKER_README` are the other
two files of the connector package.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from connector.api.app import create_app
from connector.api.subscriptions import NOTIFICATIONS

PLACEHOLDER_HOST = "https://sms-connector.example.com"
"""The host of the checked-in definition (export again with ``--host`` for a real one)."""

ACTIONS: dict[str, str] = {
    "sendMessage": "important",
    "sendFromTemplate": "important",
    "getMessage": "important",
    "sendBulk": "important",
    "getBulkJob": "advanced",
    "getConsent": "advanced",
    "requestOptIn": "advanced",
    "recordOptOut": "advanced",
    "listConfigurations": "internal",
    "listTemplates": "internal",
    "whenSmsReceived": "important",
    "whenStatusChanges": "important",
    "deleteSubscription": "internal",
}
"""The operations the connector offers, with their ``x-ms-visibility``."""

DYNAMIC_VALUES: dict[str, dict[str, str]] = {
    "configuration_id": {
        "operationId": "listConfigurations",
        "value-collection": "value",
        "value-path": "id",
        "value-title": "name",
    },
    "template_id": {
        "operationId": "listTemplates",
        "value-collection": "value",
        "value-path": "id",
        "value-title": "title",
    },
}
"""Request properties a maker picks from a list instead of pasting an id."""

ADVANCED_PROPERTIES = frozenset(
    {"media_urls", "send_at", "origin", "method", "expires_in_minutes", "from", "secret"}
)
"""Request properties shown under "Show advanced options"."""

PROBLEM = {
    "type": "object",
    "description": "An error (RFC 9457 problem details) with a stable code",
    "properties": {
        "type": {"type": "string", "x-ms-summary": "Type"},
        "title": {"type": "string", "x-ms-summary": "Title"},
        "status": {"type": "integer", "x-ms-summary": "Status"},
        "detail": {"type": "string", "x-ms-summary": "Detail"},
        "code": {"type": "string", "x-ms-summary": "Code"},
    },
}
_KEEP = (
    *("type", "format", "title", "description", "default", "enum", "pattern", "example"),
    *("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"),
    *("required", "items", "properties", "additionalProperties"),
)


def swagger(
    openapi: Mapping[str, Any],
    host_url: str,
    notifications: Mapping[str, type[BaseModel]],
) -> dict[str, Any]:
    """The Swagger 2.0 connector definition of ``openapi`` served at ``host_url``.

    ``notifications``: per trigger operation id, the model of what its callback receives.
    """
    parts = urlsplit(host_url)
    definitions: dict[str, Any] = {"Problem": PROBLEM}
    for name, schema in openapi.get("components", {}).get("schemas", {}).items():
        definitions[name] = _schema(schema)
    paths: dict[str, Any] = {}
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            visibility = ACTIONS.get(op.get("operationId", ""))
            if visibility is None:
                continue
            entry = paths.setdefault(path, {})
            entry[method] = _operation(op, visibility)
            model = notifications.get(op["operationId"])
            if model is not None:
                entry[method]["x-ms-trigger"] = "single"
                definitions.update(_model_definitions(model))
                entry["x-ms-notification-content"] = {
                    "description": _sentence(model.__doc__ or model.__name__),
                    "schema": {"$ref": f"#/definitions/{model.__name__}"},
                }
    used = _referenced(paths, definitions)
    return {
        "swagger": "2.0",
        "info": {
            "title": "Dataverse SMS",
            "description": "Send and receive SMS recorded in Microsoft Dataverse: single and "
            "bulk sends, templates, consent, and triggers for received messages and status "
            "changes.",
            "version": str(openapi["info"]["version"]),
        },
        "host": parts.netloc,
        "basePath": parts.path.rstrip("/") or "/",
        "schemes": [parts.scheme or "https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": paths,
        "definitions": {name: definitions[name] for name in sorted(used)},
        "parameters": {},
        "responses": {},
        "securityDefinitions": {"api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        "security": [{"api_key": []}],
        "tags": [],
    }


def _operation(op: Mapping[str, Any], visibility: str) -> dict[str, Any]:
    summary = str(op.get("summary") or op["operationId"])
    out: dict[str, Any] = {
        "operationId": op["operationId"],
        "summary": summary,
        "description": _sentence(str(op.get("description") or summary)),
        "x-ms-visibility": visibility,
        "parameters": [_parameter(p) for p in op.get("parameters", [])],
        "responses": {},
    }
    body = op.get("requestBody")
    if body is not None:
        schema = _body_schema(body["content"]["application/json"]["schema"])
        out["parameters"].append({"name": "body", "in": "body", "required": True, "schema": schema})
    for status, answer in op.get("responses", {}).items():
        out["responses"][status] = _response(status, answer)
    return out


def _sentence(text: str) -> str:
    """A docstring as one line of plain text (no reST quotes)."""
    return " ".join(text.replace("``", "").split())


def _parameter(param: Mapping[str, Any]) -> dict[str, Any]:
    schema = _schema(_non_null(param.get("schema", {})))
    title = schema.pop("title", None) or param["name"].replace("-", " ").title()
    out: dict[str, Any] = {
        "name": param["name"],
        "in": param["in"],
        "required": bool(param.get("required", False)),
        "x-ms-summary": title,
        "description": param.get("description") or title,
    }
    out.update({k: v for k, v in schema.items() if k not in ("description", "x-ms-summary")})
    out.setdefault("type", "string")
    if param["in"] == "path":
        out["x-ms-url-encoding"] = "single"
    if param["in"] == "header":
        out["x-ms-visibility"] = "advanced"
    return out


def _body_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    return _schema(schema)


def _response(status: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.get("description") or status}
    content = answer.get("content", {})
    if status.startswith(("4", "5")):
        out["schema"] = {"$ref": "#/definitions/Problem"}
    elif "application/json" in content:
        out["schema"] = _schema(content["application/json"].get("schema", {}))
    headers = answer.get("headers")
    if headers:
        out["headers"] = {
            name: {"type": "string", "description": h.get("description", name)}
            for name, h in headers.items()
        }
    return out


def _model_definitions(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/definitions/{model}", by_alias=True)
    found = {name: _schema(s) for name, s in schema.pop("$defs", {}).items()}
    found[model.__name__] = _schema(schema)
    return found


def _non_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` as X (Swagger 2.0 has no null)."""
    options = schema.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**kept[0], **merged}
    return dict(schema)


def _schema(schema: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 / JSON Schema subschema as a Swagger 2.0 schema, annotated."""
    source = _non_null(schema)
    if "$ref" in source:
        ref = str(source["$ref"]).replace("#/components/schemas/", "#/definitions/")
        return {"$ref": ref}
    if "anyOf" in source or "oneOf" in source:  # a union Swagger 2.0 cannot say: any object
        source = {k: v for k, v in source.items() if k not in ("anyOf", "oneOf")}
        source.setdefault("type", "object")
    if "const" in source:
        source["enum"] = [source.pop("const")]
    if "examples" in source:
        examples = source.pop("examples")
        if isinstance(examples, list) and examples:
            source["example"] = examples[0]
    out: dict[str, Any] = {k: copy.deepcopy(source[k]) for k in _KEEP if k in source}
    out.update({k: copy.deepcopy(v) for k, v in source.items() if k.startswith("x-ms-")})
    if "title" in out:
        out["x-ms-summary"] = out["title"]
    if name in DYNAMIC_VALUES:
        out["x-ms-dynamic-values"] = DYNAMIC_VALUES[name]
    if name in ADVANCED_PROPERTIES:
        out.setdefault("x-ms-visibility", "advanced")
    if "items" in out:
        out["items"] = _schema(out["items"])
    if "properties" in out:
        out["properties"] = {k: _schema(v, k) for k, v in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema(out["additionalProperties"])
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = True
    return out


def _referenced(paths: Mapping[str, Any], definitions: Mapping[str, Any]) -> set[str]:
    """The definitions ``paths`` reach, directly or through other definitions."""
    found: set[str] = set()
    todo = [paths]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref.removeprefix("#/definitions/")
                if name not in found:
                    found.add(name)
                    todo.append(definitions[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def api_properties() -> dict[str, Any]:
    """``apiProperties.json``: the API key as a secure connection parameter."""
    return {
        "properties": {
            "connectionParameters": {
                "api_key": {
                    "type": "securestring",
                    "uiDefinition": {
                        "displayName": "API key",
                        "description": "One of the connector's CONNECTOR_API__KEYS",
                        "tooltip": "Sent as the X-API-Key header",
                        "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
                    },
                }
            },
            "iconBrandColor": "#0F6CBD",
            "capabilities": [],
            "publisher": "Dataverse SMS connector",
            "stackOwner": "Dataverse SMS connector",
        }
    }


MAKER_README = """\
# Dataverse SMS: custom connector for Power Automate

Send and receive SMS that are recorded in Dataverse, from your flows.

## Import

1. Export the files for your connector's address (the checked-in ones use a placeholder
   host): `connector powerautomate export --out DIR --host https://sms.contoso.com`
   (or set `CONNECTOR_PUBLIC_BASE_URL`).
2. In Power Automate: Data > Custom connectors > New custom connector > Import an
   OpenAPI file, pick `apiDefinition.swagger.json`; or with the Power Platform CLI:
   `paconn create --api-def apiDefinition.swagger.json --api-prop apiProperties.json`.
3. Create a connection with one of the connector's API keys (`CONNECTOR_API__KEYS`).

## Actions

- **Send an SMS**, **Send an SMS from a template** (a template and a record: the number
  comes from the record), **Get a message's status**.
- **Send an SMS to many** (up to 10,000 numbers or records; sent at the sender's rate) and
  **Get a bulk job's progress** (each recipient's outcome, the estimated finish).
- **Get a number's consent**, **Ask for a double opt-in**, **Record an opt-out**.
- Sender configurations and templates are picked from lists.

## Triggers

- **When an SMS is received** (optionally for one sender): the message, the Dataverse
  record it was matched to and the conversation (session) id.
- **When a message's status changes**: sent, delivered, undelivered, failed.

Each event carries an id (the same on a repeated delivery); deliveries are retried for 24
hours when your flow's endpoint fails. Turning a flow off or deleting it unsubscribes.
"""


def connector_files(host_url: str | None = None) -> dict[str, str]:
    """The three files of the connector package, by name, for ``host_url``."""
    definition = swagger(create_app().openapi(), host_url or PLACEHOLDER_HOST, NOTIFICATIONS)
    return {
        "apiDefinition.swagger.json": json.dumps(definition, indent=2, ensure_ascii=False) + "\n",
        "apiProperties.json": json.dumps(api_properties(), indent=2) + "\n",
        "README.md": MAKER_README,
    }
