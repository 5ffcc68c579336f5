"""A Twilio-compatible SMS simulator: the REST API subset the connector uses, over real HTTP.

The real ``twilio`` SDK and :class:`~connector.providers.twilio.client.TwilioProvider` run against
it unchanged (local mode, tests, benchmarks). Twilio's API:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json``: create (form; Basic auth checked)
* ``GET  /2010-04-01/Accounts/{sid}/Messages/{MessageSid}.json``: fetch
* ``GET  /2010-04-01/Accounts/{sid}/Messages.json``: list (``To``/``From``, paging shape)
* ``GET  /2010-04-01/Accounts/{sid}.json``: fetch the account (credential check)
* ``GET  /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json``: the account's numbers and
  their inbound webhook URL (``PhoneNumber`` filter; ``SimulatorOptions.numbers``)
* ``GET  /2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}``: inbound media it hosts

and the simulator's own controls, for tests:

* ``POST /_simulator/inbound`` ``{"from", "to", "body", "media"?, "url"?}``: post a signed
  inbound webhook to ``url`` or the configured inbound URL; answers with the webhook's reply
* ``GET  /_simulator/messages``: sent messages, callbacks posted, inbound injected
* ``POST /_simulator/options``: change behaviour (out of order, duplicates, throttling...)
* ``POST /_simulator/reset``: forget messages, callbacks and inbound injections
* ``GET  /_simulator/wait?timeout=5``: block until queued callbacks are posted

Behaviour per number: :mod:`connector.emulators.twilio.numbers`; callback sequence:
:mod:`connector.emulators.twilio.engine`.
Embed in-process with ``connector.bootstrap.server_thread.running(create_simulator_app(...))``.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import fields as dataclass_fields
from typing import Annotated, Any

import requests
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.emulators.twilio.errors import SimulatorRefusalError
from connector.emulators.twilio.numbers import API_VERSION, new_sid, segments
from connector.providers.twilio.forms import build_inbound_form

_basic = HTTPBasic(auto_error=False)
Credentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]
PREFIX = f"/{API_VERSION}/Accounts"
PLACEHOLDER_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class MediaItem(BaseModel):
    """One inbound media item: a URL (type guessed from it when not given), or content the
    simulator hosts itself, as Twilio does, behind Basic auth (``data_base64``, or a 1x1 PNG
    placeholder when only ``content_type`` is given)."""

    url: str | None = Field(default=None, max_length=2000)
    content_type: str | None = Field(default=None, max_length=200)
    data_base64: str | None = Field(default=None, max_length=7_000_000)


class InboundRequest(BaseModel):
    """``POST /_simulator/inbound``: a message a customer "sends" to one of our numbers."""

    model_config = {"populate_by_name": True}

    from_: str = Field(alias="from", max_length=64)
    to: str = Field(max_length=64)
    body: str = Field(default="", max_length=1600)
    media: list[str | MediaItem] = Field(default_factory=list, max_length=10)
    url: str | None = Field(default=None, max_length=2000)
    messaging_service_sid: str | None = None


def _media(
    engine: SimulatorEngine, request: InboundRequest, sid: str, self_url: str
) -> list[tuple[str, str]]:
    media = []
    for item in request.media:
        if isinstance(item, str) or item.url is not None:
            link = item if isinstance(item, str) else str(item.url)
            kind = None if isinstance(item, str) else item.content_type
            guessed = mimetypes.guess_type(link)[0] or "application/octet-stream"
            media.append((link, kind or guessed))
            continue
        kind = item.content_type or "image/png"
        try:
            data = base64.b64decode(item.data_base64 or PLACEHOLDER_PNG, validate=True)
        except ValueError:  # binascii.Error is a ValueError
            raise SimulatorRefusalError(400, 21620, "media data_base64 is not base64") from None
        path = f"{PREFIX}/{engine.options.account_sid}/Messages/{sid}/Media/{new_sid('ME')}"
        engine.host_media(path, kind, data)
        media.append((self_url.rstrip("/") + path, kind))
    return media


def inject_inbound(
    engine: SimulatorEngine, request: InboundRequest, self_url: str = ""
) -> dict[str, Any]:
    """Post a signed inbound webhook; returns the sid used and the webhook's answer.

    ``self_url`` is the simulator's own base URL (for media it hosts).
    """
    url = request.url or engine.options.inbound_url
    if not url:
        raise SimulatorRefusalError(400, 21201, "No inbound webhook URL configured or given")
    sid = new_sid("MM" if request.media else "SM")
    media = _media(engine, request, sid, self_url)
    form = build_inbound_form(
        message_sid=sid,
        account_sid=engine.options.account_sid,
        from_number=request.from_,
        to_number=request.to,
        body=request.body,
        media=media,
        messaging_service_sid=request.messaging_service_sid,
        num_segments=segments(request.body),
    )
    try:
        answer = engine.poster.post_signed(url, form)
        result = {
            "message_sid": sid,
            "url": url,
            "status_code": answer.status_code,
            "content_type": answer.headers.get("content-type"),
            "body": answer.text,
        }
    except requests.RequestException as exc:
        result = {"message_sid": sid, "url": url, "error": f"{type(exc).__name__}: {exc}"}
    engine.record_inbound({**result, "from": request.from_, "to": request.to})
    return result


def _paged(
    found: list[dict[str, Any]], key: str, base: str, page: int, size: int
) -> dict[str, Any]:
    """One page of a Twilio list resource, with Twilio's paging fields."""
    start = page * size
    chunk = found[start : start + size]
    last = max(0, (len(found) - 1) // size)
    return {
        key: chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": f"{base}&Page=0",
        "next_page_uri": f"{base}&Page={page + 1}" if page < last else None,
        "previous_page_uri": f"{base}&Page={page - 1}" if page > 0 else None,
        "page": page,
        "page_size": size,
        "start": start,
        "uri": f"{base}&Page={page}",
    }


def _page(
    engine: SimulatorEngine, account_sid: str, params: dict[str, str], page: int, size: int
) -> dict[str, Any]:
    found = engine.list_messages(params.get("To"), params.get("From"))
    base = f"{PREFIX}/{account_sid}/Messages.json?PageSize={size}"
    return _paged(found, "messages", base, page, size)


def _numbers_page(
    engine: SimulatorEngine, account_sid: str, phone_number: str | None, page: int, size: int
) -> dict[str, Any]:
    found = engine.incoming_numbers(phone_number)
    base = f"{PREFIX}/{account_sid}/IncomingPhoneNumbers.json?PageSize={size}"
    return _paged(found, "incoming_phone_numbers", base, page, size)


def create_simulator_app(engine: SimulatorEngine | None = None) -> FastAPI:
    """The simulator as an ASGI app; ``app.state.engine`` is its state."""
    engine = engine or SimulatorEngine()
    app = FastAPI(title="Twilio simulator", docs_url=None, redoc_url=None)
    app.state.engine = engine

    @app.exception_handler(SimulatorRefusalError)
    def _refused(_: Request, exc: SimulatorRefusalError) -> JSONResponse:
        return JSONResponse(exc.twilio_body(), status_code=exc.status)

    def auth(creds: HTTPBasicCredentials | None, account_sid: str) -> None:
        engine.check_auth(creds.username if creds else None, creds.password if creds else None,
                          account_sid)  # fmt: skip

    @app.post(PREFIX + "/{account_sid}/Messages.json", status_code=201)
    async def create(account_sid: str, request: Request, creds: Credentials) -> dict[str, Any]:
        auth(creds, account_sid)
        form = await request.form(max_fields=100)
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return engine.create_message(pairs)

    @app.get(PREFIX + "/{account_sid}/Messages/{message_sid}.json")
    def fetch(account_sid: str, message_sid: str, creds: Credentials) -> dict[str, Any]:
        auth(creds, account_sid)
        return engine.fetch_message(message_sid)

    @app.get(PREFIX + "/{account_sid}/Messages.json")
    def list_messages(
        account_sid: str,
        request: Request,
        creds: Credentials,
        page: Annotated[int, Query(alias="Page", ge=0)] = 0,
        size: Annotated[int, Query(alias="PageSize", ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        auth(creds, account_sid)
        return _page(engine, account_sid, dict(request.query_params), page, size)

    @app.get(PREFIX + "/{account_sid}.json")
    def account(account_sid: str, creds: Credentials) -> dict[str, Any]:
        auth(creds, account_sid)
        return engine.account()

    @app.get(PREFIX + "/{account_sid}/IncomingPhoneNumbers.json")
    def incoming_numbers(
        account_sid: str,
        creds: Credentials,
        phone_number: Annotated[str | None, Query(alias="PhoneNumber", max_length=64)] = None,
        page: Annotated[int, Query(alias="Page", ge=0)] = 0,
        size: Annotated[int, Query(alias="PageSize", ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        auth(creds, account_sid)
        return _numbers_page(engine, account_sid, phone_number, page, size)

    @app.get(PREFIX + "/{account_sid}/Messages/{message_sid}/Media/{media_sid}")
    def media(account_sid: str, message_sid: str, media_sid: str, request: Request,
              creds: Credentials) -> Response:  # fmt: skip
        auth(creds, account_sid)
        content_type, data = engine.hosted_media(request.url.path)
        return Response(data, media_type=content_type)

    @app.post("/_simulator/inbound")
    def inbound(body: InboundRequest, request: Request) -> dict[str, Any]:
        return inject_inbound(engine, body, str(request.base_url))

    @app.get("/_simulator/messages")
    def messages() -> dict[str, Any]:
        return engine.snapshot()

    @app.post("/_simulator/options")
    def options(changes: dict[str, Any]) -> dict[str, Any]:
        allowed = {f.name for f in dataclass_fields(SimulatorOptions)} - {"account_sid"}
        unknown = set(changes) - allowed
        if unknown:
            raise SimulatorRefusalError(400, 21200, f"unknown options: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(engine.options, name, value)
        current: dict[str, Any] = engine.snapshot()["options"]
        return current

    @app.post("/_simulator/reset")
    def reset() -> dict[str, Any]:
        engine.reset()
        return engine.snapshot()

    @app.get("/_simulator/wait")
    def wait(timeout: Annotated[float, Query(gt=0, le=60)] = 5.0) -> dict[str, bool]:
        return {"idle": engine.wait_idle(timeout)}

    return app
