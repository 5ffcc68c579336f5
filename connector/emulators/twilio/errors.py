"""The SMS simulator's one exception: a request it refuses, as Twilio would.

The simulator is a stand-in, not part of the connector, so its refusal is a plain exception
and not a :class:`connector.errors.ConnectorError`: the connector only ever sees it as an
HTTP answer carrying Twilio's error body (the simulator app's exception handler).
"""

from __future__ import annotations

from typing import Any


class SimulatorRefusalError(Exception):
    """The Twilio-compatible simulator answers a request with an error, as Twilio would.

    ``status`` is the HTTP status, ``twilio_code`` the ``code`` of Twilio's error body,
    ``message`` its text.
    """

    def __init__(self, status: int, twilio_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.twilio_code = twilio_code
        self.message = message

    def twilio_body(self) -> dict[str, Any]:
        """Twilio's JSON error body for this refusal."""
        return {
            "code": self.twilio_code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.twilio_code}",
            "status": self.status,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, "
            f"twilio_code={self.twilio_code!r}, message={self.message!r})"
        )
