"""connector.multipart: the $batch body splitter agrees with the standard library's MIME parser
on generated bodies, and refuses what is not multipart content."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.multipart import MultipartError, Part, boundary_of, http_message, parse, split

_TEXT = st.text(alphabet='abcXYZ019 {}":,./$-_', max_size=40)
_LINE_END = st.sampled_from(["\r\n", "\n"])
_NAMES = st.sampled_from(["Content-Type", "Content-ID", "OData-Version", "X-Note", "content-id"])


@st.composite
def _leaf(draw: st.DrawFn, nl: str) -> tuple[list[tuple[str, str]], str]:
    headers = draw(st.lists(st.tuples(_NAMES, _TEXT.map(str.strip)), max_size=3))
    headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
    headers.append(("Content-Type", "application/http"))
    body = nl.join(draw(st.lists(_TEXT, min_size=1, max_size=4)))
    return headers, body


@st.composite
def _multipart(draw: st.DrawFn, depth: int = 0) -> tuple[str, str, str]:
    """(boundary, line end, body) of a generated multipart body, change sets nested once."""
    nl = draw(_LINE_END)
    boundary = f"b_{draw(st.uuids()).hex}_{depth}"
    chunks = []
    for _ in range(draw(st.integers(1, 5))):
        if depth == 0 and draw(st.booleans()):
            inner_boundary, _, inner = draw(_multipart(depth=1))
            head = f'Content-Type: multipart/mixed; boundary="{inner_boundary}"'
            chunks.append(f"{head}{nl}{nl}{inner.replace(chr(13) + chr(10), nl)}")
        else:
            headers, body = draw(_leaf(nl))
            lines = [f"{name}: {value}" for name, value in headers]
            chunks.append(nl.join(lines) + nl + nl + body)
    preamble = draw(st.sampled_from(["", f"a preamble{nl}"]))
    text = preamble + "".join(f"--{boundary}{nl}{chunk}{nl}" for chunk in chunks)
    return boundary, nl, text + f"--{boundary}--{nl}"


def _stdlib(content_type: str, body: bytes) -> Message:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    return email.message_from_bytes(head + body, policy=email.policy.compat32)


def _same(ours: list[Part], theirs: list[Message]) -> None:
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        if other.is_multipart():
            assert mine.boundary == other.get_boundary()
            _same(mine.parts(), other.get_payload())  # type: ignore[arg-type]
            continue
        assert mine.boundary is None
        first: dict[str, str] = {}
        for name, value in other.items():
            first.setdefault(name.lower(), value.strip())
        assert mine.headers == first
        theirs_payload = other.get_payload(decode=True)
        assert isinstance(theirs_payload, bytes)
        assert mine.payload().replace(b"\r\n", b"\n") == theirs_payload.replace(b"\r\n", b"\n")


@settings(max_examples=300, deadline=None)
@given(_multipart())
def test_agrees_with_the_standard_library(generated: tuple[str, str, str]) -> None:
    boundary, _, text = generated
    content_type = f'multipart/mixed; boundary="{boundary}"'
    body = text.encode()
    _same(parse(content_type, body), _stdlib(content_type, body).get_payload())  # type: ignore[arg-type]


def test_a_batch_with_a_change_set_splits_into_parts_and_requests() -> None:
    body = (
        b"--batch_1\r\n"
        b"Content-Type: multipart/mixed; boundary=changeset_1\r\n\r\n"
        b"--changeset_1\r\n"
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: 1\r\n\r\n"
        b"POST /api/data/v9.2/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        b'{"firstname": "--batch_1 inside a value"}\r\n'
        b"--changeset_1--\r\n"
        b"--batch_1\r\n"
        b"Content-Type: application/http\r\n\r\n"
        b"GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n\r\n\r\n"
        b"--batch_1--\r\n"
    )
    first, second = parse("multipart/mixed; boundary=batch_1", body)
    (create,) = first.parts()
    assert create.get("content-id") == "1"
    line, headers, payload = http_message(create.payload())
    assert line == "POST /api/data/v9.2/contacts HTTP/1.1"
    assert headers == [("Content-Type", "application/json")]
    assert payload == b'{"firstname": "--batch_1 inside a value"}'
    assert second.boundary is None
    assert http_message(second.payload())[0] == "GET /api/data/v9.2/WhoAmI HTTP/1.1"


def test_boundaries_quoted_or_not_and_only_on_multipart() -> None:
    assert boundary_of('multipart/mixed; boundary="a b"') == "a b"
    assert boundary_of("multipart/mixed;boundary=batch_9; charset=x") == "batch_9"
    assert boundary_of("Multipart/Mixed; BOUNDARY=x") == "x"
    assert boundary_of("application/json; boundary=x") is None
    assert boundary_of("multipart/mixed") is None


def test_folded_headers_and_encoded_parts() -> None:
    encoded = base64.b64encode(b"HTTP/1.1 204 No Content\r\n\r\n").decode()
    body = (
        f"--x\r\nContent-Type: application/http\r\nX-Long: one\r\n two\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--x--\r\n"
    ).encode()
    (part,) = split("x", body)
    assert part.get("X-Long") == "one two"
    assert part.payload() == b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"{}", "not multipart"),
        ("multipart/mixed; boundary=x", b"--x\r\nA: b\r\n\r\nbody\r\n", "no closing delimiter"),
        ("multipart/mixed; boundary=x", b"no delimiter at all", "no closing delimiter"),
        ("multipart/mixed; boundary=x", b"--x\r\nno colon here\r\n\r\nb\r\n--x--", "colon"),
        (
            "multipart/mixed; boundary=x",
            b"--x\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@\r\n--x--",
            "base64",
        ),
    ],
)
def test_what_is_not_multipart_content_is_refused(
    content_type: str, body: bytes, message: str
) -> None:
    with pytest.raises(MultipartError, match=message):
        for part in parse(content_type, body):
            part.payload()
