"""How the simulator posts to webhooks: forms signed exactly as Twilio signs them, status
callbacks in order from one background thread, and a way to wait until all are posted."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from connector.log_config import get_logger
from connector.providers.twilio.signature import SIGNATURE_HEADER, compute_signature

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Callback:
    """One status callback to post."""

    url: str
    fields: list[tuple[str, str]]
    message_sid: str
    status: str
    error_code: int | None


class SignedPoster:
    """Posts signed forms; callbacks queue up and go out from a daemon thread, in order.

    ``token`` and ``timeout`` are read at each post (options can change while running);
    ``on_posted(callback, record)`` runs in the thread after each callback with what
    happened (``http_status`` or ``error``).
    """

    def __init__(
        self,
        token: Callable[[], str],
        timeout: Callable[[], float],
        on_posted: Callable[[Callback, dict[str, Any]], None],
    ) -> None:
        self._token, self._timeout, self._on_posted = token, timeout, on_posted
        self._http = requests.Session()
        self._queue: queue.Queue[Callback | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def post_signed(self, url: str, fields: list[tuple[str, str]]) -> requests.Response:
        """POST a form to ``url`` signed with the auth token, exactly as Twilio does."""
        headers = {
            SIGNATURE_HEADER: compute_signature(url, fields, self._token()),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
        }
        return self._http.post(url, data=urlencode(fields), headers=headers,
                               timeout=self._timeout())  # fmt: skip

    def enqueue(self, callbacks: Sequence[Callback]) -> None:
        """Queue callbacks for the delivery thread (started on first use)."""
        with self._idle:
            self._pending += len(callbacks)
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_forever, daemon=True)
                self._thread.start()
        for callback in callbacks:
            self._queue.put(callback)

    def _deliver_forever(self) -> None:
        while (job := self._queue.get()) is not None:
            record: dict[str, Any] = {"message_sid": job.message_sid, "status": job.status,
                                      "url": job.url}  # fmt: skip
            try:
                record["http_status"] = self.post_signed(job.url, job.fields).status_code
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                log.warning("simulator.callback_failed", url=job.url, error=record["error"])
            self._on_posted(job, record)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued callback was posted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop the delivery thread (callbacks still queued are dropped)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5.0)
        self._http.close()
