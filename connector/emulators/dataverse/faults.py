"""Fault injection: the emulator misbehaving on purpose, for reliability runs and tests.

Off by default. ``POST /_emulator/faults`` with a JSON body switches one fault on for a
window, ``DELETE /_emulator/faults`` ends it early and ``GET /_emulator/faults`` shows the
one in force. Only the Web API (``/api/data/v9.2/...``) misbehaves: the token service and
the ``/_emulator/*`` endpoints keep answering, so a run can still count the rows. Modes:

- ``error``: answer ``status`` (500-599, default 503) in the Web API error envelope; the
  request is not carried out.
- ``throttle``: answer 429 with ``Retry-After: retry_after`` (seconds, default 5) and
  Dataverse's service-protection code for the number of requests; not carried out.
- ``hang``: read the request and never answer it; not carried out. The connection stays
  open until the client gives up or the window ends, then it is reset without an answer.
- ``reset``: carry the request out (a write is committed), then reset the connection (TCP
  RST) after the head and half the body of the answer (before the head when it has no
  body, as a 204): the client never learns that it succeeded.

``seconds`` is the window's length (required, at most an hour) and ``ratio`` the share of
requests it hits (0 < ratio <= 1, default 1; drawn at random). Each hit request is counted
in ``GET /_emulator/stats`` under ``faults``. A bad body is a 400 naming what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.emulators.dataverse.protocol import API_PREFIX

Mode = Literal["error", "throttle", "hang", "reset"]
MODES: tuple[Mode, ...] = ("error", "throttle", "hang", "reset")
THROTTLE_CODE = "0x80072322"  # Dataverse's "number of requests exceeded the limit"
MAX_WINDOW = 3600.0


class FaultRequestError(ValueError):
    """A fault request the emulator cannot carry out (answered 400 with this message)."""


@dataclass(frozen=True)
class Fault:
    """One fault window: what happens to the requests it hits, until when, to what share."""

    mode: Mode
    until: float  # time.monotonic() at which the window ends
    ratio: float = 1.0
    status: int = 503
    retry_after: int = 5

    @classmethod
    def parse(cls, body: object, now: float) -> Fault:
        """The fault a ``POST /_emulator/faults`` body asks for; FaultRequestError if bad."""
        if not isinstance(body, dict):
            raise FaultRequestError("the body must be a JSON object")
        unknown = set(body) - {"mode", "seconds", "ratio", "status", "retry_after"}
        if unknown:
            raise FaultRequestError(f"unknown fields: {', '.join(sorted(unknown))}")
        mode = body.get("mode")
        if mode not in MODES:
            raise FaultRequestError(f"mode must be one of {', '.join(MODES)}")
        seconds = _number(body, "seconds", None, 0, MAX_WINDOW)
        ratio = _number(body, "ratio", 1.0, 0, 1)
        status = int(_number(body, "status", 503, 500, 599, integer=True))
        retry_after = int(_number(body, "retry_after", 5, 0, MAX_WINDOW, integer=True))
        return cls(cast(Mode, mode), now + seconds, ratio, status, retry_after)

    def shown(self, now: float) -> dict[str, Any]:
        """The fault as ``GET /_emulator/faults`` shows it (``seconds`` left)."""
        fields = asdict(self)
        fields["seconds"] = round(max(0.0, fields.pop("until") - now), 3)
        return fields


def _number(
    body: dict[str, Any],
    name: str,
    default: float | None,
    low: float,
    high: float,
    *,
    integer: bool = False,
) -> float:
    value = body.get(name, default)
    kind = int if integer else (int, float)
    if value is None:
        raise FaultRequestError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FaultRequestError(f"{name} must be {'an integer' if integer else 'a number'}")
    if not low < value <= high and not (integer and value == low):
        raise FaultRequestError(f"{name} must be in ({low:g}, {high:g}]")
    return float(value)


class FaultInjector:
    """ASGI middleware applying the fault in force to Web API requests; its control routes."""

    def __init__(self, stats: Any, seed: int | None = None) -> None:
        self.app: ASGIApp | None = None  # the app it guards, set when the stack is built
        self.stats = stats
        self.fault: Fault | None = None
        self._draw = random.Random(seed)  # noqa: S311 - fault sampling, not security

    def _hits(self, scope: Scope) -> Fault | None:
        fault = self.fault
        if fault is None or scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            return None
        if time.monotonic() >= fault.until:
            self.fault = None
            return None
        if fault.ratio < 1 and self._draw.random() >= fault.ratio:
            return None
        return fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "FaultInjector.app is set before it serves"
        fault = self._hits(scope)
        if fault is None:
            await self.app(scope, receive, send)
            return
        self.stats["faults"] += 1
        if fault.mode == "hang":
            await _hang(receive, send, fault.until)
        elif fault.mode == "reset":
            await self.app(scope, receive, _cut_after_half(send))
        else:
            await _refuse(fault)(scope, receive, send)

    async def control(self, request: Request) -> Response:
        """``GET``/``POST``/``DELETE /_emulator/faults``."""
        now = time.monotonic()
        if request.method == "POST":
            try:
                self.fault = Fault.parse(json.loads(await request.body() or b"null"), now)
            except (FaultRequestError, ValueError) as exc:
                return JSONResponse({"error": {"code": "", "message": str(exc)}}, 400)
        elif request.method == "DELETE":
            self.fault = None
            return Response(status_code=204)
        fault = self.fault
        shown = fault.shown(now) if fault is not None and now < fault.until else None
        return JSONResponse({"fault": shown})


async def _hang(receive: Receive, send: Send, until: float) -> None:
    """Read the request, then wait for the client to give up or the window to end."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            continue  # the rest of the body: read and dropped

    try:
        await asyncio.wait_for(disconnected(), timeout=max(0.0, until - time.monotonic()))
    except TimeoutError:
        await _abort(send)


def _cut_after_half(send: Send) -> Send:
    """A ``send`` that passes the head and half the body, then resets the connection.

    An answer without a body (204) is reset before its head: nothing of it arrives.
    """
    head: Message | None = None
    cut_done = False

    async def cut(message: Message) -> None:
        nonlocal head, cut_done
        if cut_done:
            return
        if message["type"] == "http.response.start":
            head = message
            return
        if message["type"] == "http.response.body" and head is not None:
            body: bytes = message.get("body", b"")
            if body:
                await send(head)
                half = body[: len(body) // 2]
                await send({"type": "http.response.body", "body": half, "more_body": True})
            cut_done = True
            await _abort(send)
            return
        await send(message)

    return cut


async def _abort(send: Send) -> None:
    """Reset the connection (RST: SO_LINGER 0, then abort) without another byte.

    ASGI has no message for this: the transport is reached through uvicorn's ``send`` (the
    emulator always runs on uvicorn). On another server the app just returns, and the
    server closes or answers 500 as it sees fit.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)  # let the server see the connection lost before the app returns


def _refuse(fault: Fault) -> ASGIApp:
    if fault.mode == "throttle":
        message = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        return JSONResponse(
            {"error": {"code": THROTTLE_CODE, "message": message}},
            429,
            headers={"Retry-After": str(fault.retry_after)},
        )
    message = f"Injected fault: the service answered {fault.status}."
    return JSONResponse({"error": {"code": "0x80040216", "message": message}}, fault.status)
