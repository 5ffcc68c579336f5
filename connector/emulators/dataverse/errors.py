"""The Dataverse emulator's one exception: a request it refuses, as Dataverse would.

The emulator is a stand-in, not part of the connector, so its refusal is a plain exception
and not a :class:`connector.errors.ConnectorError`: the connector only ever sees it as an
HTTP answer in the Web API error envelope (``protocol.fault_response``).
"""

from __future__ import annotations


class EmulatorRequestError(Exception):
    """The emulator answers a request with an error, as Dataverse would.

    ``status`` is the HTTP status to send, ``service_code`` the hex ``error.code`` of the
    Web API envelope (``""`` when Dataverse leaves it empty), ``message`` its text,
    ``headers`` extra response headers (``Retry-After`` on 429).
    """

    def __init__(
        self,
        status: int,
        service_code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.service_code = service_code
        self.message = message
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, "
            f"service_code={self.service_code!r}, message={self.message!r})"
        )
