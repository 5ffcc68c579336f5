"""Bounds on what a client can make the service hold: API body size, time to send headers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import requests
from pydantic import SecretStr

from connector.api.app import create_app
from connector.api.deps import WebServices
from connector.bootstrap.server_thread import ServerThread, running

KEY = "bounds-api-key"
ACCEPT = "/api/v1/sessions/00000000-0000-0000-0000-000000000001/accept"
MIB = 1024 * 1024


def _app() -> object:
    return create_app(WebServices(api_keys=[SecretStr(KEY)]))


def test_api_body_over_one_mib_is_refused_with_413_problem_json() -> None:
    with running(_app()) as url:
        big = b"{" + b" " * MIB + b"}"
        answer = requests.post(url + ACCEPT, data=big, headers={"X-API-Key": KEY}, timeout=30)
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "body_too_large"
        small = requests.post(url + ACCEPT, json={"user_id": "x"}, headers={"X-API-Key": KEY},
                              timeout=10)  # fmt: skip
        assert small.status_code == 503  # passed on to the route (not wired here)


def test_streamed_api_body_is_cut_off_at_the_limit() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * (64 * 1024)  # 2.5 MiB, no Content-Length (chunked)

    with running(_app()) as url:
        answer = requests.post(url + ACCEPT, data=chunks(), headers={"X-API-Key": KEY},
                               timeout=30)  # fmt: skip
        assert answer.status_code == 413


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_do_not_finish_their_headers_in_time_are_closed() -> None:
    server = ServerThread(_app(), header_timeout=0.5).start()
    try:
        silent = socket.create_connection((server.host, server.port))
        slow = socket.create_connection((server.host, server.port))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        assert _closed_within(silent, 5) and _closed_within(slow, 5)
        assert time.monotonic() - started < 3
        silent.close()
        slow.close()
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
