"""SMS segments: which encoding a text needs, how many segments it costs, and why.

A single SMS carries 140 bytes: 160 GSM-7 septets or 70 UCS-2 (UTF-16) code units. A longer
text is sent as concatenated segments, each losing 6 bytes to the user data header: 153
septets or 67 units per segment.

* GSM-7 is used when every character is in the GSM 03.38 basic table (1 septet) or its
  extension table (``^ { } \\ [ ~ ] | €`` and form feed: 2 septets, ESC + code).
* Any other character forces the **whole** text to UCS-2, counted in UTF-16 code units (an
  emoji outside the Basic Multilingual Plane counts 2). :attr:`SegmentInfo.ucs2_triggers`
  lists those characters so a user can see why the message costs more (curly quotes, en
  dashes, ``ê`` and non-breaking spaces are the usual culprits).
* Segments are packed the way the handset reassembles them: an escape pair or a surrogate
  pair is never split, so a segment may carry 152 septets or 66 units and the count can be
  one more than ``ceil(units / 153)``. This follows Twilio's segment calculator, the
  behavioural reference.

An empty text has 0 segments (nothing to send). Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 127 characters of the GSM 03.38 basic table (the 128th code is the escape)."""

GSM7_EXTENSION = "^{}\\[~]|€\f"
"""Characters reached through the escape: each costs 2 septets."""

_SEPTETS = {**dict.fromkeys(GSM7_BASIC, 1), **dict.fromkeys(GSM7_EXTENSION, 2)}
_GSM7 = frozenset(_SEPTETS)

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
UDH_BITS = 48
"""The user data header of a concatenated segment: 6 bytes."""


class Encoding(StrEnum):
    """The data coding an SMS is sent with."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text goes over the air.

    ``units`` are septets (GSM-7) or UTF-16 code units (UCS-2); ``characters`` are Unicode
    code points; ``parts`` the text of each segment; ``ucs2_triggers`` the distinct
    characters (in order of first appearance) that are not GSM-7.
    """

    encoding: Encoding
    segments: int
    characters: int
    units: int
    parts: tuple[str, ...]
    ucs2_triggers: tuple[str, ...]

    @property
    def unit_bits(self) -> int:
        """Bits per unit: 7 for a septet, 16 for a UTF-16 code unit."""
        return 7 if self.encoding is Encoding.GSM7 else 16

    @property
    def per_segment(self) -> int:
        """Units one segment can hold for this text (160/70 alone, 153/67 concatenated)."""
        if self.encoding is Encoding.GSM7:
            return GSM7_SINGLE if self.segments <= 1 else GSM7_PART
        return UCS2_SINGLE if self.segments <= 1 else UCS2_PART

    @property
    def message_bits(self) -> int:
        """Size of the text itself in bits (Twilio calculator's ``messageSize``)."""
        return self.units * self.unit_bits

    @property
    def total_bits(self) -> int:
        """Text plus one header per segment when concatenated (``totalSize``)."""
        headers = UDH_BITS * self.segments if self.segments > 1 else 0
        return self.message_bits + headers

    @property
    def remaining(self) -> int:
        """Units still free in the last segment before another one is needed."""
        if not self.parts:
            return GSM7_SINGLE if self.encoding is Encoding.GSM7 else UCS2_SINGLE
        return self.per_segment - _units(self.parts[-1], self.encoding)

    def trigger_names(self) -> list[str]:
        """Each UCS-2 trigger as ``U+2019 RIGHT SINGLE QUOTATION MARK``, for people."""
        return [
            f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED CHARACTER')}"
            for ch in self.ucs2_triggers
        ]


def unit_cost(ch: str, encoding: Encoding) -> int:
    """Units ``ch`` (one code point) takes in ``encoding``."""
    if encoding is Encoding.GSM7:
        return _SEPTETS[ch]
    return 2 if ord(ch) > 0xFFFF else 1


def ucs2_triggers(text: str) -> tuple[str, ...]:
    """The distinct characters of ``text`` outside both GSM-7 tables, first seen first."""
    if _GSM7.issuperset(text):
        return ()
    return tuple(ch for ch in dict.fromkeys(text) if ch not in _GSM7)


def count_segments(text: str) -> SegmentInfo:
    """Encoding, segment count, counts, parts and UCS-2 triggers of ``text``."""
    triggers = ucs2_triggers(text)
    encoding = Encoding.UCS2 if triggers else Encoding.GSM7
    units = _units(text, encoding)
    single, part = (
        (GSM7_SINGLE, GSM7_PART) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_PART)
    )
    if not text:
        parts: tuple[str, ...] = ()
    elif units <= single:
        parts = (text,)
    else:
        parts = _pack(text, encoding, part)
    return SegmentInfo(
        encoding=encoding,
        segments=len(parts),
        characters=len(text),
        units=units,
        parts=parts,
        ucs2_triggers=triggers,
    )


def _units(text: str, encoding: Encoding) -> int:
    """Septets or UTF-16 code units of ``text`` (counted by the codec / ``str.count``)."""
    if encoding is Encoding.GSM7:
        return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _pack(text: str, encoding: Encoding, capacity: int) -> tuple[str, ...]:
    """Fill segments of ``capacity`` units greedily, never splitting a character."""
    if _units(text, encoding) == len(text):  # every character one unit: plain slices
        return tuple(text[i : i + capacity] for i in range(0, len(text), capacity))
    parts: list[str] = []
    start, used = 0, 0
    for index, ch in enumerate(text):
        cost = unit_cost(ch, encoding)
        if used + cost > capacity:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return tuple(parts)
