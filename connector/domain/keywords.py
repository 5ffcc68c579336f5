"""Inbound keywords: which body is a keyword, what it does, and which body only mentions one.

A keyword is matched on the whole body as :func:`normalize` reads it: NFKC-normalized,
case-folded to upper case, with whitespace, punctuation, symbols (emoji) and control or
invisible characters taken off both ends, so "Stop.", " stop! " and STOP in full-width
letters are all STOP.

The carrier-mandated families are built in and always keep their action: STOP and its
synonyms opt out, START and its synonyms opt in, HELP and INFO answer with help. An admin
keyword row for one of those words only supplies the reply text (and its id); it cannot turn
STOP into anything else. YES is special: it confirms a pending opt-in when there is one, and
is an ordinary START word otherwise. Admin rows add words of their own, per configuration or
global (a configuration's row wins over a global one for the same word).

A body that is not a keyword but still asks to be left alone ("please stop texting me") is
not an opt-out; :func:`mentions_opt_out` says why such a message deserves a person's review.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from connector.domain.model import Keyword, KeywordAction

STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
START_WORDS = ("START", "UNSTOP", "YES")
HELP_WORDS = ("HELP", "INFO")

_CONFIRM_WORD = "YES"
_BUILT_IN: dict[str, KeywordAction] = {
    **dict.fromkeys(STOP_WORDS, KeywordAction.OPT_OUT),
    **dict.fromkeys(START_WORDS, KeywordAction.OPT_IN),
    **dict.fromkeys(HELP_WORDS, KeywordAction.HELP),
}
# Stripped from the ends: separators (Z*), punctuation (P*), symbols (S*: emoji, currency),
# control, format (zero-width), surrogate, private-use and unassigned characters (C*).
_STRIPPED = frozenset("ZPSC")
_WHITESPACE = re.compile(r"\s+")
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u2032\uff07", "'"))
# Whole words only; a hyphen or any other non-word character is a boundary.
_OPT_OUT_PHRASES = re.compile(
    r"(?<!\w)(?:"
    + "|".join(word.lower() for word in STOP_WORDS)
    + r"|opt[\s-]*out|remove\s+me|do\s+not\s+text|don'?t\s+text"
    + r")(?!\w)"
)


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """A body that is a keyword: the word as matched, its action and reply.

    ``keyword_id`` and ``reply_text`` come from the admin keyword row that matched; a
    built-in word without a row has neither.
    """

    word: str
    action: KeywordAction
    reply_text: str | None = None
    keyword_id: str | None = None


def _well_formed(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _strippable(char: str) -> bool:
    return unicodedata.category(char)[0] in _STRIPPED


def _is_mark(char: str) -> bool:
    return unicodedata.category(char)[0] == "M"


def _strip_ends(text: str) -> str:
    """``text`` without strippable characters at either end.

    Combining marks go with the character they sit on: a variation selector or keycap after
    an emoji is stripped with it, an accent on a final letter stays.
    """
    start = 0
    while start < len(text) and (_strippable(text[start]) or _is_mark(text[start])):
        start += 1
    end = len(text)
    while end > start:
        base = end - 1
        while base > start and _is_mark(text[base]):
            base -= 1
        if not _strippable(text[base]):
            break
        end = base
    return text[start:end]


def normalize(body: str) -> str:
    """The body as keywords are matched: NFKC, upper case (after case folding), inner
    whitespace runs as one space, and no whitespace, punctuation, symbols or invisible
    characters at either end. Any ``str`` is accepted, lone surrogates included."""
    # Stripped before NFKC too, so that a symbol with a compatibility form in letters
    # ("STOP™", "STOP㎏") is dropped whole rather than read as "STOPTM", "STOPKG".
    text = unicodedata.normalize("NFKC", _strip_ends(_well_formed(body)))
    text = unicodedata.normalize("NFKC", text.casefold().upper())
    return _WHITESPACE.sub(" ", _strip_ends(text))


@functools.lru_cache(maxsize=1024)
def _normalized_word(keyword: str) -> str:
    """:func:`normalize` of an admin keyword row's word (remembered: every inbound message
    is matched against every row, and the rows rarely change)."""
    return normalize(keyword)


def _admin_rows(
    admin_keywords: Sequence[Keyword], configuration_id: str | None
) -> dict[str, Keyword]:
    """The active rows that apply to ``configuration_id`` by normalized word; the
    configuration's own row wins over a global one."""
    rows: dict[str, Keyword] = {}
    for row in admin_keywords:
        if not row.active or row.configuration_id not in (None, configuration_id):
            continue
        word = _normalized_word(row.keyword)
        held = rows.get(word)
        if held is None or (held.configuration_id is None and row.configuration_id is not None):
            rows[word] = row
    return rows


def match(
    body: str,
    admin_keywords: Sequence[Keyword],
    *,
    configuration_id: str | None,
    pending_opt_in: bool,
) -> KeywordMatch | None:
    """The keyword the whole of ``body`` is, or None.

    Built-in words keep their action whatever an admin row says (the row supplies reply and
    id); YES confirms when ``pending_opt_in`` and opts in otherwise. An admin row with action
    CONFIRM matches only while an opt-in is pending. Inactive rows and rows of other
    configurations are ignored.
    """
    word = normalize(body)
    if not word:
        return None
    row = _admin_rows(admin_keywords, configuration_id).get(word)
    reply, row_id = (row.reply_text, row.id) if row is not None else (None, None)
    if word == _CONFIRM_WORD and pending_opt_in:
        return KeywordMatch(word, KeywordAction.CONFIRM, reply, row_id)
    built_in = _BUILT_IN.get(word)
    if built_in is not None:
        return KeywordMatch(word, built_in, reply, row_id)
    if row is None or (row.action is KeywordAction.CONFIRM and not pending_opt_in):
        return None
    return KeywordMatch(word, row.action, reply, row_id)


def mentions_opt_out(body: str) -> str | None:
    """Why a body that is not a keyword should be reviewed as a possible opt-out, or None.

    Looks for an opt-out word or phrase as a whole word, in any case: the STOP family,
    "opt out", "remove me", "do not text", "don't text". A body that is itself a built-in
    keyword is None (it is handled as the keyword). The reason names the first mention,
    e.g. ``mentions "stop"``.
    """
    if normalize(body) in _BUILT_IN:
        return None
    text = unicodedata.normalize("NFKC", _well_formed(body)).casefold().translate(_APOSTROPHES)
    found = _OPT_OUT_PHRASES.search(text)
    if found is None:
        return None
    phrase = re.sub(r"[\s-]+", " ", found.group())
    return f'mentions "{phrase}"'
