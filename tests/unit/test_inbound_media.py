"""MMS media download: provider hosts only, credentials never follow a redirect elsewhere."""

from __future__ import annotations

import pytest
import responses

from connector.domain.provider_messages import InboundMedia
from connector.errors import InvalidInputError, ProviderError, is_transient
from connector.providers.twilio.media import ProviderMediaFetcher, filename_for

SID = "AC" + "1" * 32
MEDIA = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME123"


def fetcher(max_bytes: int = 1024) -> ProviderMediaFetcher:
    return ProviderMediaFetcher(
        lambda account: (account, "secret-token") if account == SID else None,
        max_bytes=max_bytes,
    )


@responses.activate
def test_media_on_the_provider_host_is_fetched_with_credentials() -> None:
    responses.get(MEDIA, body=b"\x89PNG...", content_type="image/png")
    got = fetcher().fetch(InboundMedia(MEDIA, "image/png"), SID)
    assert got.data == b"\x89PNG..." and got.content_type == "image/png"
    assert got.filename == "ME123.png"
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_media_elsewhere_is_refused_without_any_request() -> None:
    with pytest.raises(InvalidInputError):
        fetcher().fetch(InboundMedia("https://evil.example.com/x.png", "image/png"), SID)
    assert len(responses.calls) == 0


@responses.activate
def test_lookalike_host_is_refused() -> None:
    url = "https://api.twilio.com.evil.example/x.png"
    with pytest.raises(InvalidInputError):
        fetcher().fetch(InboundMedia(url, "image/png"), SID)
    assert len(responses.calls) == 0


@responses.activate
def test_redirect_to_the_cdn_is_followed_without_credentials() -> None:
    cdn = "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC1/abc"
    responses.get(MEDIA, status=307, headers={"Location": cdn})
    responses.get(cdn, body=b"jpeg-bytes", content_type="image/jpeg")
    got = fetcher().fetch(InboundMedia(MEDIA, "image/jpeg"), SID)
    assert got.data == b"jpeg-bytes"
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_plain_http_redirect_is_not_followed() -> None:
    responses.get(MEDIA, status=302, headers={"Location": "http://cdn.example.com/a"})
    with pytest.raises(InvalidInputError):
        fetcher().fetch(InboundMedia(MEDIA, "image/jpeg"), SID)
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_account_gets_no_credentials() -> None:
    with pytest.raises(InvalidInputError):
        fetcher().fetch(InboundMedia(MEDIA, "image/png"), "AC" + "9" * 32)
    assert len(responses.calls) == 0


@responses.activate
def test_oversized_media_is_refused() -> None:
    responses.get(MEDIA, body=b"x" * 2048, content_type="image/png")
    with pytest.raises(InvalidInputError):
        fetcher(max_bytes=1024).fetch(InboundMedia(MEDIA, "image/png"), SID)


@responses.activate
def test_server_error_is_transient() -> None:
    responses.get(MEDIA, status=503)
    with pytest.raises(ProviderError) as caught:
        fetcher().fetch(InboundMedia(MEDIA, "image/png"), SID)
    assert is_transient(caught.value)


def test_filename_is_safe_whatever_the_url() -> None:
    media = InboundMedia("https://api.twilio.com/a/../..%2F/ME$%^&", "image/gif")
    assert filename_for(media).endswith(".gif")
    assert "/" not in filename_for(media) and "%" not in filename_for(media)
