"""Twilio webhook signatures (``X-Twilio-Signature``): compute and verify.

The algorithm (reference: sms-providers section 3) is HMAC-SHA1, keyed with the auth token,
over the full URL Twilio called followed by every form field as ``name + value``, sorted by
name (a repeated name contributes each distinct value, sorted), base64-encoded. JSON bodies
are not appended: Twilio adds ``bodySHA256`` (hex SHA-256 of the raw body) to the query and
signs the URL alone. Twilio is inconsistent about the port, so a request verifies when the
URL signs with the port removed or with the default port added.

The string building is twilio-python's own (``RequestValidator.compute_signature``,
``add_port``, ``remove_port``); the comparison here is ``hmac.compare_digest`` and the URL
is always the one **the connector is configured to be reached at**
(``connector.providers.webhooks.public_url``), never the socket address, which a proxy
changes. Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from urllib.parse import parse_qs, urlencode, urlparse, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator, add_port, remove_port

from connector.errors import SignatureError

SIGNATURE_HEADER = "X-Twilio-Signature"
BODY_HASH_PARAM = "bodySHA256"
_MAX_SIGNATURE_CHARS = 200
_MAX_FIELDS = 500

FormParams = Mapping[str, str] | Mapping[str, Sequence[str]] | Sequence[tuple[str, str]]


class _MultiParams(dict[str, list[str]]):
    """Form fields with every value of a repeated name, shaped as twilio-python reads them."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def _multi(params: FormParams) -> _MultiParams:
    pairs: Iterable[tuple[str, str | Sequence[str]]]
    if hasattr(params, "multi_items"):  # Starlette's FormData: every value of repeated names
        pairs = params.multi_items()
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    multi = _MultiParams()
    for name, value in pairs:
        values = [value] if isinstance(value, str) else list(value)
        multi.setdefault(str(name), []).extend(str(v) for v in values)
    if len(multi) > _MAX_FIELDS:
        raise SignatureError(
            "too many form fields to verify", details={"reason": "too_many_fields"}
        )
    return multi


def compute_signature(url: str, params: FormParams | None, auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a form POST (or a JSON/GET URL alone)."""
    validator = RequestValidator(auth_token)
    signature: str = validator.compute_signature(url, _multi(params or {}))
    return signature


def body_sha256(body: str | bytes) -> str:
    """Hex SHA-256 of a raw body, as Twilio puts it in ``bodySHA256``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(raw).hexdigest()


def with_body_hash(url: str, body: str | bytes) -> str:
    """``url`` with the ``bodySHA256`` query parameter Twilio adds for a JSON body."""
    parts = urlsplit(url)
    extra = urlencode({BODY_HASH_PARAM: body_sha256(body)})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def signature_from(headers: Mapping[str, str]) -> str | None:
    """The ``X-Twilio-Signature`` header value, whatever its case."""
    wanted = SIGNATURE_HEADER.lower()
    for name, value in headers.items():
        if name.lower() == wanted:
            return value
    return None


@lru_cache(maxsize=256)
def _url_variants(url: str) -> tuple[str, ...]:
    """The URL without its port and with the default port (Twilio signs either); cached:
    every webhook to one path has the same URL."""
    parsed = urlsplit(url)
    if not parsed.scheme or not parsed.netloc:
        raise SignatureError("webhook URL is not absolute", details={"reason": "bad_url"})
    as_parsed = urlparse(url)
    return tuple(dict.fromkeys([remove_port(as_parsed), add_port(as_parsed)]))


def _matches(expected: str, computed: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), computed.encode("utf-8"))


def verify(
    url: str,
    params_or_body: FormParams | str | bytes | None,
    signature: str | None,
    auth_tokens: Sequence[str],
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs this request.

    ``params_or_body`` is the decoded form fields (all of them, repeated names included),
    or the raw body of a JSON webhook (then ``url`` must carry ``bodySHA256``).
    ``auth_tokens`` lists the tokens to accept (the current one, and during a rotation the
    previous one). ``details['reason']`` says what failed; no secret is ever included.
    """
    if not signature:
        raise SignatureError("missing X-Twilio-Signature", details={"reason": "missing"})
    if len(signature) > _MAX_SIGNATURE_CHARS:
        raise SignatureError("signature header too long", details={"reason": "malformed"})
    if not auth_tokens:
        raise SignatureError("no auth token to verify with", details={"reason": "no_token"})
    params: FormParams = {}
    if isinstance(params_or_body, str | bytes):
        hashes = parse_qs(urlsplit(url).query).get(BODY_HASH_PARAM)
        if not hashes:
            raise SignatureError(
                "a raw body needs bodySHA256 in the URL", details={"reason": "no_body_hash"}
            )
        if not _matches(hashes[0].lower(), body_sha256(params_or_body)):
            raise SignatureError(
                "body does not match bodySHA256", details={"reason": "body_hash_mismatch"}
            )
    elif params_or_body is not None:
        params = params_or_body
    multi = _multi(params)
    for token in auth_tokens:
        validator = RequestValidator(token)
        for candidate in _url_variants(url):
            if _matches(signature, validator.compute_signature(candidate, multi)):
                return
    raise SignatureError("webhook signature does not verify", details={"reason": "mismatch"})
