"""Twilio webhook signatures: the published twilio-python vectors, the connector fixtures of
the reference, and every tampering case failing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import SignatureError
from connector.providers.twilio.signature import (
    body_sha256,
    compute_signature,
    signature_from,
    verify,
    with_body_hash,
)
from connector.providers.webhooks import public_url
from connector.testing.signing import signed_form, signed_json

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
JSON_BODY = '{"property": "value", "boolean": true}'
JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"

INBOUND_STOP = (
    "ToCountry=US&ToState=CA&SmsMessageSid=SM1234567890abcdef1234567890abcdef&NumMedia=0&"
    "ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM1234567890abcdef1234567890abcdef&FromState=CA&"
    "SmsStatus=received&FromCity=SAN+FRANCISCO&Body=STOP&FromCountry=US&To=%2B14155550100&"
    "MessagingServiceSid=MG1234567890abcdef1234567890abcdef&ToZip=94105&NumSegments=1&"
    "MessageSid=SM1234567890abcdef1234567890abcdef&AccountSid=AC1234567890abcdef1234567890abcdef&"
    "From=%2B14155550199&ApiVersion=2010-04-01&OptOutType=STOP"
)
STATUS_UNDELIVERED = (
    "AccountSid=AC1234567890abcdef1234567890abcdef&ApiVersion=2010-04-01&ErrorCode=30003&"
    "From=%2B14155550100&MessageSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&MessageStatus=undelivered&"
    "MessagingServiceSid=MG1234567890abcdef1234567890abcdef&RawDlrDoneDate=2508121430&"
    "SmsSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&SmsStatus=undelivered&To=%2B14155550199"
)


def _form(encoded: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(encoded, keep_blank_values=True)


def test_computes_the_published_signature() -> None:
    assert compute_signature(URL, PARAMS, TOKEN) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_verifies_the_published_signature() -> None:
    verify(URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [TOKEN])


def test_verifies_when_twilio_signed_without_the_port() -> None:
    verify("https://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS,
           "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [TOKEN])  # fmt: skip


def test_verifies_http_url_signed_with_its_port() -> None:
    verify("http://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS,
           "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", [TOKEN])  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_verifies_when_twilio_signed_with_the_default_port(url: str, expected: str) -> None:
    verify(url, PARAMS, expected, [TOKEN])


def test_repeated_fields_sign_each_distinct_value_sorted() -> None:
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
             ("Digits", "1234"), ("Digits", "1234")]  # fmt: skip
    assert compute_signature(URL, pairs, TOKEN) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    verify(URL, {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]},
           "IK+Dwps556ElfBT0I3Rgjkr1wJU=", [TOKEN])  # fmt: skip


def test_body_hash_matches_the_published_vector() -> None:
    assert body_sha256(JSON_BODY) == JSON_HASH


def test_verifies_the_published_json_body_vector() -> None:
    url = with_body_hash(URL, JSON_BODY)
    assert url == f"{URL}&bodySHA256={JSON_HASH}"
    verify(url, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=", [TOKEN])
    verify(url, JSON_BODY.encode(), "a9nBmqA0ju/hNViExpshrM61xv4=", [TOKEN])


def test_verifies_the_inbound_stop_fixture_with_and_without_port() -> None:
    fields = _form(INBOUND_STOP)
    for url in ("https://connector.example.com/twilio/inbound",
                "https://connector.example.com:443/twilio/inbound"):  # fmt: skip
        verify(url, fields, "+RScbODka5i8IEwfZ1lZQqgtO24=", [TOKEN])


def test_verifies_the_status_callback_fixture() -> None:
    verify("https://connector.example.com/twilio/status?tenant=contoso",
           _form(STATUS_UNDELIVERED), "wVybqXtk2hpo9nUdeboA7djm7dY=", [TOKEN])  # fmt: skip


def test_accepts_a_previous_token_during_rotation() -> None:
    verify(URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", ["new-token", TOKEN])


def _reason(url: str, params: object, sig: str | None, tokens: list[str]) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(url, params, sig, tokens)  # type: ignore[arg-type]
    return str(caught.value.details["reason"])


GOOD = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in PARAMS.items() if k != name}


@pytest.mark.parametrize(
    ("case", "url", "params"),
    [
        ("tampered value", URL, {**PARAMS, "Digits": "9999"}),
        ("extra field", URL, {**PARAMS, "Body": "hi"}),
        ("missing field", URL, _without("Caller")),
        ("field renamed", URL, {**_without("To"), "to": "+18005551212"}),
        ("value whitespace added", URL, {**PARAMS, "From": " +14158675309"}),
        ("other host", "https://evil.example.com/myapp.php?foo=1&bar=2", PARAMS),
        ("other path", "https://mycompany.com/other.php?foo=1&bar=2", PARAMS),
        ("other query", "https://mycompany.com/myapp.php?foo=2&bar=2", PARAMS),
        ("query dropped", "https://mycompany.com/myapp.php", PARAMS),
        ("scheme changed", "http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS),
        ("socket address", "http://127.0.0.1:8080/myapp.php?foo=1&bar=2", PARAMS),
        ("duplicate value added", URL, [*PARAMS.items(), ("Digits", "5555")]),
    ],
)  # fmt: skip
def test_rejects_tampered_request(case: str, url: str, params: object) -> None:
    assert _reason(url, params, GOOD, [TOKEN]) == "mismatch", case


def test_rejects_wrong_token() -> None:
    assert _reason(URL, PARAMS, GOOD, ["54321"]) == "mismatch"


@pytest.mark.parametrize("header", ["", None])
def test_rejects_missing_signature_header(header: str | None) -> None:
    assert _reason(URL, PARAMS, header, [TOKEN]) == "missing"


@pytest.mark.parametrize("sig", ["RSOYDt4T1cUTdK1PDd93/VVr8B8", "rsoydt4t1cutdk1pdd93/vvr8b8=",
                                 "RSOYDt4T1cUTdK1PDd93/VVr8B8= ", "x" * 500])  # fmt: skip
def test_rejects_altered_signature_header(sig: str) -> None:
    assert _reason(URL, PARAMS, sig, [TOKEN]) in {"mismatch", "malformed"}


def test_rejects_tampered_json_body() -> None:
    url = with_body_hash(URL, JSON_BODY)
    assert _reason(url, JSON_BODY.replace("value", "VALUE"), "a9nBmqA0ju/hNViExpshrM61xv4=",
                   [TOKEN]) == "body_hash_mismatch"  # fmt: skip


def test_rejects_json_body_with_a_hash_of_another_body_in_the_url() -> None:
    other = '{"property": "other"}'
    url = with_body_hash(URL, other)
    assert _reason(url, JSON_BODY, compute_signature(url, None, TOKEN), [TOKEN]) == (
        "body_hash_mismatch"
    )


def test_rejects_json_body_without_body_hash_param() -> None:
    assert _reason(URL, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=", [TOKEN]) == "no_body_hash"


def test_rejects_json_url_signature_made_for_another_query() -> None:
    url = with_body_hash(URL, JSON_BODY)
    assert _reason(url.replace("foo=1", "foo=3"), JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=",
                   [TOKEN]) == "mismatch"  # fmt: skip


def test_rejects_form_request_when_no_token_is_configured() -> None:
    assert _reason(URL, PARAMS, GOOD, []) == "no_token"


def test_rejects_relative_url() -> None:
    assert _reason("/myapp.php?foo=1&bar=2", PARAMS, GOOD, [TOKEN]) == "bad_url"


def test_public_url_uses_configured_base_and_raw_query() -> None:
    assert public_url("https://sms.example.com/", "/webhooks/twilio/messages") == (
        "https://sms.example.com/webhooks/twilio/messages"
    )
    assert public_url("https://example.com/crm/", "webhooks/x", "a=1%2B2&b=") == (
        "https://example.com/crm/webhooks/x?a=1%2B2&b="
    )


def test_signature_header_is_found_in_any_case() -> None:
    assert signature_from({"x-twilio-signature": "abc"}) == "abc"
    assert signature_from({"X-TWILIO-SIGNATURE": "abc"}) == "abc"
    assert signature_from({"Content-Type": "x"}) is None


def test_signing_helpers_produce_requests_that_verify() -> None:
    from urllib.parse import parse_qsl

    form = signed_form(
        "https://h.example/webhooks/twilio/messages", {"Body": "Hi é", "To": "+1"}, "t"
    )
    verify(form.url, parse_qsl(form.body.decode()), signature_from(form.headers), ["t"])
    js = signed_json("https://h.example/hook", '{"a": 1}', "t")
    verify(js.url, js.body, signature_from(js.headers), ["t"])


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_FORMS = st.lists(st.tuples(st.text(st.characters(min_codepoint=65, max_codepoint=122),
                                    min_size=1, max_size=12), _TEXT), max_size=12)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(form=_FORMS, token=st.text(min_size=1, max_size=40))
def test_any_signed_form_verifies_and_any_changed_value_does_not(
    form: list[tuple[str, str]], token: str
) -> None:
    url = "https://sms.example.com/webhooks/twilio/messages?x=1"
    sig = compute_signature(url, form, token)
    verify(url, form, sig, [token])
    if form:
        name, value = form[0]
        others = [pair for pair in form[1:] if pair[0] == name]
        changed = [(name, value + "!"), *form[1:]]
        if not any(v == value + "!" for _, v in others) and not any(v == value for _, v in others):
            with pytest.raises(SignatureError):
                verify(url, changed, sig, [token])
    with pytest.raises(SignatureError):
        verify(url + "&y=2", form, sig, [token])


def test_starlette_form_data_keeps_every_value_of_a_repeated_field() -> None:
    from starlette.datastructures import FormData

    form = FormData([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
                     ("Digits", "1234"), ("Digits", "1234")])  # fmt: skip
    # verify() reads FormData through multi_items(), but its declared type does not name it
    verify(URL, form, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", [TOKEN])  # type: ignore[arg-type]
