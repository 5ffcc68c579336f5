"""MMS media download: only from the provider's own hosts, credentials never sent elsewhere.

Implements :class:`~connector.ports.MediaFetcher`. A media URL is fetched with the account's
credentials only when its scheme and host are on the allow list (``api.twilio.com``, and the
simulator's configured host in local mode or tests); anything else is refused without a
request. Twilio answers a media URL with a redirect to its CDN: the redirect is followed
once, over HTTPS (or to the same allowed origin), **without** credentials. Bodies are capped
(Twilio's MMS limit is 5 MB). A refused or missing item is an :class:`InvalidInputError`
(the message is stored without it); network trouble and 5xx are transient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import requests

from connector.domain.conversation import MediaFile
from connector.domain.provider_messages import InboundMedia
from connector.errors import InvalidInputError, ProviderError

MAX_MEDIA_BYTES = 5 * 1024 * 1024
TWILIO_MEDIA_ORIGIN = "https://api.twilio.com"
_REDIRECTS = {301, 302, 303, 307, 308}
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "text/vcard": ".vcf",
    "application/pdf": ".pdf",
}

Credentials = Callable[[str], tuple[str, str] | None]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def filename_for(media: InboundMedia) -> str:
    """A safe file name: the media id from the URL plus an extension from the content type."""
    return media.stem + _EXTENSIONS.get(media.content_type.split(";")[0].strip().lower(), "")


class ProviderMediaFetcher:
    """Downloads media from allowed origins with ``credentials(account_id)`` (basic auth)."""

    def __init__(
        self,
        credentials: Credentials,
        allowed_origins: Iterable[str] = (TWILIO_MEDIA_ORIGIN,),
        *,
        session: requests.Session | None = None,
        timeout: float = 20.0,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> None:
        self._credentials = credentials
        self._allowed = {o.rstrip("/").lower() for o in allowed_origins}
        self._session = session or requests.Session()
        self._timeout = timeout
        self._max = max_bytes

    def fetch(self, media: InboundMedia, account_id: str) -> MediaFile:
        """The media's bytes (see the module docstring for what is refused)."""
        if _origin(media.url) not in self._allowed:
            raise InvalidInputError(
                "media URL is not on the provider's own hosts; not fetched",
                details={"host": urlsplit(media.url).netloc[:100]},
            )
        auth = self._credentials(account_id)
        if auth is None:
            raise InvalidInputError("no credentials for the media's account")
        answer = self._get(media.url, auth)
        if answer.status_code in _REDIRECTS:
            target = answer.headers.get("Location", "")
            answer.close()
            same_origin = _origin(target) in self._allowed
            if not (target.startswith("https://") or same_origin):
                raise InvalidInputError("media redirect is not HTTPS; not followed")
            answer = self._get(target, auth if same_origin else None)
        data = self._body(answer)
        content_type = answer.headers.get("Content-Type", media.content_type)
        return MediaFile(filename_for(media), content_type.split(";")[0].strip(), data)

    def _get(self, url: str, auth: tuple[str, str] | None) -> requests.Response:
        try:
            return self._session.get(
                url, auth=auth, timeout=self._timeout, allow_redirects=False, stream=True
            )
        except requests.RequestException as exc:
            raise ProviderError(
                f"media download failed: {type(exc).__name__}", category="network", transient=True
            ) from exc

    def _body(self, answer: requests.Response) -> bytes:
        with answer:
            if answer.status_code >= 500 or answer.status_code == 429:
                raise ProviderError(
                    f"media download answered {answer.status_code}",
                    http_status=answer.status_code,
                    transient=True,
                )
            if answer.status_code != 200:
                raise InvalidInputError(
                    f"media download answered {answer.status_code}",
                    details={"status": answer.status_code},
                )
            chunks, size = [], 0
            for chunk in answer.iter_content(64 * 1024):
                size += len(chunk)
                if size > self._max:
                    raise InvalidInputError(f"media larger than {self._max} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()
