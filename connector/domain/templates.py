"""The placeholder language of ``smsc_template`` bodies: parse, list the fields, render (pure).

A body is text with placeholders in braces:

* ``{column}``: a column of the record the message regards (``{firstname}``);
* ``{lookup.column}``: a column of the row a lookup points to, one level only
  (``{parentcustomerid.name}``);
* ``{column|default text}``: ``default text`` when the record has no value there (an empty
  default, ``{column|}``, makes a placeholder optional);
* ``{sender.name}``, ``{sender.number}``: the sender, passed in with the record's values
  under the ``sender.`` prefix.

``{{`` and ``}}`` are a literal brace; a lone ``}`` is a mistake. Names are case-insensitive
(kept in lower case) and may have spaces around them; a default runs to the next ``}`` and
cannot contain braces. Malformed bodies raise :class:`~connector.errors.TemplateError` with
code ``template_invalid`` naming the position (0-based) and the reason.

Rendering is one pass over the parsed body: a value is inserted as it is and never read
again, so a value that looks like a placeholder (``{lastname}``) stays text. A placeholder
without a value (None, empty or only whitespace) and without a default is never sent: render
raises ``template_value_missing`` naming every such placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from connector.errors import TemplateError

SENDER_PREFIX = "sender."
SENDER_NAME = "sender.name"
SENDER_NUMBER = "sender.number"
SENDER_FIELDS = frozenset({SENDER_NAME, SENDER_NUMBER})

_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACE = re.compile(r"[{}]")


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{name}`` or ``{name|default}`` of a body; ``position`` is where its ``{`` is."""

    name: str
    default: str | None
    position: int

    @property
    def is_sender(self) -> bool:
        """Whether this is ``{sender.name}`` or ``{sender.number}`` (not a record field)."""
        return self.name in SENDER_FIELDS


Part = str | Placeholder
"""A parsed body is literal text (braces already unescaped) and placeholders, in order."""


def _invalid(reason: str, position: int) -> TemplateError:
    return TemplateError(
        f"template invalid: {reason} at position {position}",
        code="template_invalid",
        details={"position": position, "reason": reason},
    )


def _check_name(raw: str, start: int) -> str:
    """The placeholder name ``raw`` (text after ``{`` at ``start``) checked and lower-cased."""
    name = raw.strip()
    offset = start + 1 + (len(raw) - len(raw.lstrip()))
    if not name:
        raise _invalid("empty placeholder name", start)
    parts = name.split(".")
    if len(parts) > 2:
        second_dot = offset + len(parts[0]) + 1 + len(parts[1])
        raise _invalid("more than one '.' in a placeholder name", second_dot)
    at = offset
    for part in parts:
        match = _NAME_PART.match(part)
        end = match.end() if match else 0
        if not part or end != len(part):
            reason = "empty name part" if not part else f"bad character {part[end]!r} in name"
            raise _invalid(reason, at + end)
        at += len(part) + 1
    lowered = name.lower()
    if lowered.startswith(SENDER_PREFIX) and lowered not in SENDER_FIELDS:
        raise _invalid(f"unknown sender placeholder {lowered!r}", offset)
    return lowered


def _placeholder(body: str, start: int) -> tuple[Placeholder, int]:
    """The placeholder whose ``{`` is at ``start``, and the index after its ``}``."""
    bar = None
    for index in range(start + 1, len(body)):
        char = body[index]
        if char == "{":
            raise _invalid("'{' inside a placeholder", index)
        if char == "|" and bar is None:
            bar = index
        elif char == "}":
            name_end = index if bar is None else bar
            name = _check_name(body[start + 1 : name_end], start)
            default = None if bar is None else body[bar + 1 : index]
            return Placeholder(name, default, start), index + 1
    raise _invalid("unclosed '{'", start)


@lru_cache(maxsize=512)
def parse(body: str) -> tuple[Part, ...]:
    """``body`` as literal text and placeholders; ``template_invalid`` when malformed."""
    parts: list[Part] = []
    text: list[str] = []
    index = 0
    while index < len(body):
        found = _BRACE.search(body, index)
        if found is None:
            text.append(body[index:])
            break
        at = found.start()
        text.append(body[index:at])
        brace = body[at]
        if body.startswith(brace * 2, at):
            text.append(brace)
            index = at + 2
            continue
        if brace == "}":
            raise _invalid("unmatched '}' (write '}}' for a brace)", at)
        placeholder, index = _placeholder(body, at)
        _flush(text, parts)
        parts.append(placeholder)
    _flush(text, parts)
    return tuple(parts)


def _flush(text: list[str], parts: list[Part]) -> None:
    joined = "".join(text)
    if joined:
        parts.append(joined)
    text.clear()


def placeholders(body: str) -> tuple[Placeholder, ...]:
    """Every placeholder of ``body``, in order (repeats included)."""
    return tuple(part for part in parse(body) if isinstance(part, Placeholder))


def fields_needed(body: str) -> tuple[str, ...]:
    """The record fields (``column`` / ``lookup.column``, lower case) ``body`` reads, in order,
    once each; sender placeholders are not record fields and are left out."""
    names = (p.name for p in placeholders(body) if not p.is_sender)
    return tuple(dict.fromkeys(names))


def _present(value: str | None) -> bool:
    return value is not None and bool(value.strip())


def render(body: str, values: Mapping[str, str | None]) -> str:
    """``body`` with its placeholders replaced by ``values`` (keys: lower-case field names as
    :func:`fields_needed` gives them, plus ``sender.name`` / ``sender.number``).

    A missing value takes the placeholder's default; without one, the body is not rendered:
    :class:`~connector.errors.TemplateError` ``template_value_missing`` lists every
    placeholder that had neither (``details["placeholders"]``).
    """
    out: list[str] = []
    missing: dict[str, None] = {}
    for part in parse(body):
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part.name)
        if value is not None and _present(value):
            out.append(value)
        elif part.default is not None:
            out.append(part.default)
        else:
            missing[part.name] = None
    if missing:
        names = list(missing)
        raise TemplateError(
            f"template value missing: {', '.join(names)}",
            code="template_value_missing",
            details={"placeholders": names},
        )
    return "".join(out)
