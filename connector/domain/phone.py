"""Phone numbers: any real-world spelling to E.164, and the key the phone index looks up.

Pure and fast, on ``phonenumbers`` (a data library, not an I/O SDK). :func:`parse_phone`
reads a number the way people type it into a CRM and returns a :class:`PhoneNumber`:

* A number with an explicit country code (``+44 …``, ``tel:+1-…``) ignores the region chain.
* A national number is tried against each region of the chain in order (the record's own
  country, the record type's default country, the sender's country); the first region that
  gives a *valid* number wins. When none does, ``00``/``011``/``0011`` are read as an
  international prefix whatever the region's own one is (``011 44 …`` from the UK, ``0044 …``
  from the US), then digits that already start with a country code (``447…``, the way
  Dataverse alternate keys store numbers). Only when nothing is valid does the first
  merely *possible* reading win, flagged ``unusual`` (new ranges, fictional drama numbers).
* Extensions (``x123``, ``ext. 123``, ``#123``, ``;ext=123``) are kept apart, vanity letters
  (``1-800-FLOWERS``) become digits, ``+44 (0)20 …`` drops the bracketed trunk ``0``.
* Legacy national forms are folded into today's number: Brazil's 8-digit mobiles get the
  ninth digit (``+55 11 8765-4321`` -> ``+55 11 98765-4321``), Mexico's ``+52 1``, ``044``,
  ``045`` and ``01`` prefixes go (``+52`` and ten digits).

Junk raises :class:`~connector.errors.InvalidPhoneNumberError` naming the input and a reason
(one of :data:`REASONS`).

Lookup key (stable; the phone index and the resolution ledger store it, so changing it
means re-keying them): the E.164 digits without ``+`` and without the extension, with one
more fold: an Argentine mobile's ``9`` after the country code is dropped, so ``+54 9 11
2345-6789`` (how mobiles are dialled from abroad, and how providers deliver them) and
``+54 11 2345-6789`` (how CRMs often store them) give the same key ``541123456789``.
Brazil and Mexico need no extra fold: their E.164 is already folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as Possible

from connector.errors import InvalidPhoneNumberError

MAX_INPUT_LENGTH = 64
"""Longest input read at all (a number with a long extension fits comfortably)."""

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}
_POSSIBLE_REASONS = {
    Possible.INVALID_COUNTRY_CODE: "invalid_country_code",
    Possible.TOO_SHORT: "too_short",
    Possible.TOO_LONG: "too_long",
    Possible.INVALID_LENGTH: "invalid_length",
    Possible.IS_POSSIBLE_LOCAL_ONLY: "local_only",
}
REASONS = frozenset(
    {"empty", "input_too_long", "no_region", "not_valid"}
    | set(_PARSE_REASONS.values())
    | set(_POSSIBLE_REASONS.values())
)
"""Every ``reason`` an :class:`InvalidPhoneNumberError` from this module can carry."""
_REGION_ALIASES = {"UK": "GB"}
_SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_EXPLICIT = re.compile(r"^\s*(?:tel:\s*)?[+\uff0b]")
_IDD = re.compile(r"^\s*\(?\s*(?:0011|011|00)[\s().\-]*(?=[1-9])")
_BARE_MIN_DIGITS = 11


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A parsed number.

    ``region`` is the number's own ISO region (``"001"`` for non-geographic numbers),
    ``number_type`` a lower-case ``phonenumbers`` type (``"mobile"``, ``"fixed_line"``,
    ``"fixed_line_or_mobile"``, ``"toll_free"``, ... ``"unknown"``). ``is_valid`` is False
    for a possible-but-unusual number (right length, not in a known range). ``via`` says how
    it was read: ``"explicit"`` (own country code), ``"region"`` (with ``region_used``),
    ``"idd"`` (``00``/``011`` prefix) or ``"bare_country_code"``.
    """

    e164: str
    key: str
    region: str
    number_type: str
    is_valid: bool
    extension: str | None
    via: str
    region_used: str | None = None

    @property
    def unusual(self) -> bool:
        """Possible (right length for its country) but not a valid number there."""
        return not self.is_valid

    is_possible_only = unusual

    @property
    def key_value(self) -> str:
        """The E.164 digits without ``+``: the value for Dataverse alternate keys."""
        return self.e164[1:]


def parse_phone(raw: str, regions: Sequence[str | None] = ()) -> PhoneNumber:
    """Parse ``raw`` with the region chain ``regions`` (see the module docstring).

    Raises :class:`InvalidPhoneNumberError` (with ``raw`` and ``reason``) for junk.
    """
    if not isinstance(raw, str):
        raise _invalid(repr(raw), "not_a_number")
    text = raw.strip()
    if not text:
        raise _invalid(raw, "empty")
    if len(text) > MAX_INPUT_LENGTH:
        raise _invalid(raw[:MAX_INPUT_LENGTH] + "…", "input_too_long")
    if not any(ch.isdigit() for ch in text):
        raise _invalid(raw, "not_a_number")
    return _parse_cached(text, _clean_regions(regions))


def normalize(raw: str, regions: Sequence[str | None] = ()) -> str:
    """The E.164 form of ``raw`` (``+`` and digits, no extension)."""
    return parse_phone(raw, regions).e164


def lookup_key(raw: str, regions: Sequence[str | None] = (), *, strict: bool = False) -> str:
    """The phone-index key of ``raw`` (format in the module docstring).

    With ``strict`` a possible-but-unusual number raises (reason ``not_valid``); without it
    it is keyed too, so a number in a range newer than the metadata still matches.
    """
    number = parse_phone(raw, regions)
    if strict and not number.is_valid:
        raise _invalid(raw, "not_valid")
    return number.key


def to_key_value(e164: str) -> str:
    """``+442079460958`` -> ``442079460958`` for Dataverse alternate keys (which refuse ``+``)."""
    if not re.fullmatch(r"\+[1-9]\d{6,14}", e164):
        raise _invalid(e164[:MAX_INPUT_LENGTH], "not_a_number")
    return e164[1:]


def normalize_many(
    raws: Iterable[str], regions: Sequence[str | None] = ()
) -> list[PhoneNumber | InvalidPhoneNumberError]:
    """Parse many numbers with one region chain; junk yields its error in place, in order."""
    chain = _clean_regions(regions)
    out: list[PhoneNumber | InvalidPhoneNumberError] = []
    for raw in raws:
        try:
            out.append(parse_phone(raw, chain))
        except InvalidPhoneNumberError as exc:
            out.append(exc)
    return out


def search_variants(e164: str) -> list[str]:
    """Spellings of a number as people store it, for one live ``eq`` query on phone columns.

    E.164, its digits, the international and national formats, the national digits, and the
    other spelling of a folded number (Argentina with and without the mobile ``9``).
    """
    number = phonenumbers.parse(normalize(e164))
    fmt = phonenumbers.format_number
    nsn = phonenumbers.national_significant_number(number)
    national = fmt(number, PhoneNumberFormat.NATIONAL)
    spellings = [fmt(number, PhoneNumberFormat.E164), fmt(number, PhoneNumberFormat.E164)[1:]]
    spellings += [fmt(number, PhoneNumberFormat.INTERNATIONAL), national]
    spellings += [re.sub(r"\D", "", national), nsn]
    if number.country_code == 1 and len(nsn) == 10:
        spellings += [f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}", f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}"]
    if number.country_code == 54 and nsn.startswith("9"):
        spellings += [f"+54{nsn[1:]}", f"54{nsn[1:]}"]
    return list(dict.fromkeys(spellings))


def _clean_regions(regions: Sequence[str | None]) -> tuple[str, ...]:
    """Known regions of the chain, upper-cased, de-duplicated, in order (``UK`` is ``GB``)."""
    codes = (r.strip().upper() for r in regions if r)
    known = (_REGION_ALIASES.get(c, c) for c in codes)
    return tuple(dict.fromkeys(c for c in known if c in _SUPPORTED_REGIONS))


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One reading of the input: the parsed (and legacy-folded) number and its type.

    A number is valid exactly when its type is known (as ``phonenumbers`` decides it).
    """

    via: str
    region: str | None
    number: phonenumbers.PhoneNumber
    kind: int

    @property
    def valid(self) -> bool:
        return self.kind != PhoneNumberType.UNKNOWN


@lru_cache(maxsize=65536)
def _parse_cached(text: str, chain: tuple[str, ...]) -> PhoneNumber:
    if _EXPLICIT.match(text):
        return _decide(text, [_attempt("explicit", text, None)])
    tried: list[_Attempt | str] = []
    for region in chain:
        attempt = _attempt("region", text, region)
        if isinstance(attempt, _Attempt) and attempt.valid:
            return _result(attempt)
        tried.append(attempt)
    if _IDD.match(text):
        tried.append(_attempt("idd", _IDD.sub("+", text, count=1), None))
    digits = re.sub(r"[\s().\-]", "", text)
    if digits.isdigit() and len(digits) >= _BARE_MIN_DIGITS and digits[0] != "0":
        bare = _attempt("bare_country_code", "+" + digits, None)
        if isinstance(bare, _Attempt) and bare.valid:
            tried.append(bare)
    if not tried:
        raise _invalid(text, "no_region")
    return _decide(text, tried)


def _attempt(via: str, text: str, region: str | None) -> _Attempt | str:
    """The reading of ``text`` with ``region``, or the reason it cannot be parsed."""
    try:
        number = _fold_legacy(phonenumbers.parse(text, region))
    except NumberParseException as exc:
        return _PARSE_REASONS.get(exc.error_type, "not_a_number")
    if not number.national_number:  # only zeros after the country code ("000000" in AT)
        return "not_a_number"
    if number.italian_leading_zero and not _keeps_leading_zeros(number):
        return "not_a_number"  # "000223" in AT: its E.164 would read back as another number
    return _Attempt(via, region, number, phonenumbers.number_type(number))


def _keeps_leading_zeros(number: phonenumbers.PhoneNumber) -> bool:
    """Whether the number's E.164 form reads back as the same number (leading zeros of the
    national number kept, as in Italy), so E.164 stays a fixed point of normalization."""
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    try:
        again = phonenumbers.parse(e164, None)
    except NumberParseException:
        return False
    return phonenumbers.format_number(again, PhoneNumberFormat.E164) == e164


def _decide(text: str, tried: Sequence[_Attempt | str]) -> PhoneNumber:
    """First valid attempt, else first possible one, else an error with the first reason."""
    parsed = [a for a in tried if isinstance(a, _Attempt)]
    for attempt in parsed:
        if attempt.valid:
            return _result(attempt)
    for attempt in parsed:
        if phonenumbers.is_possible_number_with_reason(attempt.number) == Possible.IS_POSSIBLE:
            return _result(attempt)
    if parsed:
        why = phonenumbers.is_possible_number_with_reason(parsed[0].number)
        raise _invalid(text, _POSSIBLE_REASONS.get(why, "not_valid"))
    raise _invalid(text, str(tried[0]))


def _fold_legacy(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """Brazil's missing ninth digit and Mexico's dropped mobile/trunk prefixes, when that
    turns an invalid number into a valid one."""
    if number.country_code not in (52, 55) or phonenumbers.is_valid_number(number):
        return number
    nsn = phonenumbers.national_significant_number(number)
    candidate = None
    if number.country_code == 55 and len(nsn) == 10 and nsn[2] in "6789":
        candidate = nsn[:2] + "9" + nsn[2:]
    elif number.country_code == 52:
        for prefix in ("044", "045", "01", "1"):
            if nsn.startswith(prefix) and len(nsn) - len(prefix) == 10:
                candidate = nsn[len(prefix) :]
                break
    if candidate is None:
        return number
    folded = phonenumbers.PhoneNumber(
        country_code=number.country_code,
        national_number=int(candidate),
        extension=number.extension,
    )
    return folded if phonenumbers.is_valid_number(folded) else number


def _result(attempt: _Attempt) -> PhoneNumber:
    number = attempt.number
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    own_region = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code or 0)
    )
    return PhoneNumber(
        e164=e164,
        key=_key(number, e164),
        region=own_region,
        number_type=PhoneNumberType.to_string(attempt.kind).lower(),
        is_valid=attempt.valid,
        extension=number.extension or None,
        via=attempt.via,
        region_used=attempt.region,
    )


def _key(number: phonenumbers.PhoneNumber, e164: str) -> str:
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == 54 and nsn.startswith("9") and len(nsn) == 11:
        return "54" + nsn[1:]
    return e164[1:]


def _invalid(raw: str, reason: str) -> InvalidPhoneNumberError:
    return InvalidPhoneNumberError(
        f"{raw!r} is not a usable phone number: {reason}", raw=raw, reason=reason
    )
