"""Inbound keyword matching: normalizing a body, the built-in families, YES and CONFIRM with
and without a pending opt-in, admin rows per configuration, the review flag for bodies that
only mention an opt-out, and properties that hold for any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.keywords import (
    HELP_WORDS,
    START_WORDS,
    STOP_WORDS,
    KeywordMatch,
    match,
    mentions_opt_out,
    normalize,
)
from connector.domain.model import Keyword, KeywordAction

CONFIG = "cfg-1"
OTHER = "cfg-2"
PROPERTY = settings(derandomize=True, deadline=None)


def _match(
    body: str, rows: list[Keyword] | None = None, *, pending: bool = False
) -> KeywordMatch | None:
    return match(body, rows or [], configuration_id=CONFIG, pending_opt_in=pending)


# --- normalize ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "Stop.",
        " STOP ",
        "stop!",
        "\uff33\uff34\uff2f\uff30",  # full-width
        "\u00a0stop\u00a0",  # no-break spaces
        "\u200bstop\u200b",  # zero-width spaces
        "\ufeffStop",  # byte order mark
        "\u00a1stop!",
        "\u00bfStop?",
        "stop \U0001f621",  # emoji
        "stop \u2764\ufe0f",  # emoji with a variation selector
        "stop #\ufe0f\u20e3!!",  # keycap on a symbol
        "\t\r\nStOp\r\n",
        "\u201cstop\u201d",
        "**STOP**",
    ],
)
def test_normalize_strips_ends_and_upper_cases(body: str) -> None:
    assert normalize(body) == "STOP"


def test_normalize_keeps_inner_text_and_collapses_inner_whitespace() -> None:
    assert normalize("  opt \t out ") == "OPT OUT"
    assert normalize("don't") == "DON'T"
    assert normalize("STOP1") == "STOP1"


def test_normalize_keeps_an_accent_on_the_last_letter() -> None:
    assert normalize("caf\u00e9!") == "CAF\u00c9"
    assert normalize("cafe\u0301") == "CAF\u00c9"  # decomposed: composed by NFKC
    assert normalize("stra\u00dfe") == "STRASSE"


@pytest.mark.parametrize("body", ["", "   ", "!!!", "\U0001f44d", "\u200b", "\ud800", "\udc00!"])
def test_normalize_of_nothing_but_decoration_is_empty(body: str) -> None:
    assert normalize(body) == ""


def test_normalize_handles_lone_surrogates_inside_the_text() -> None:
    assert normalize("st\ud800op") == "ST\ufffdOP"
    assert normalize("\ud83d\ude00stop") == "STOP"  # a surrogate pair is its emoji
    assert _match("st\udfffop") is None


# --- built-in families ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "action"),
    [
        (STOP_WORDS, KeywordAction.OPT_OUT),
        (START_WORDS, KeywordAction.OPT_IN),
        (HELP_WORDS, KeywordAction.HELP),
    ],
)
def test_built_in_words_match_their_family_without_rows(
    words: tuple[str, ...], action: KeywordAction
) -> None:
    for word in words:
        assert _match(f" {word.lower()}! ") == KeywordMatch(word, action, None, None)


def test_the_families_are_the_carrier_words() -> None:
    assert set(STOP_WORDS) == {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    }
    assert START_WORDS == ("START", "UNSTOP", "YES")
    assert HELP_WORDS == ("HELP", "INFO")


def test_only_the_whole_body_is_a_keyword() -> None:
    assert _match("please stop") is None
    assert _match("stop it") is None
    assert _match("stopping") is None
    assert _match("") is None
    assert _match("?!") is None


def test_an_admin_row_for_a_built_in_word_supplies_reply_and_id_not_the_action() -> None:
    row = Keyword("stop", KeywordAction.AUTO_REPLY, "Bye", configuration_id=CONFIG, id="k1")
    assert _match("Stop.", [row]) == KeywordMatch("STOP", KeywordAction.OPT_OUT, "Bye", "k1")
    help_row = Keyword("INFO", KeywordAction.OPT_OUT, "Call us", id="k2")
    assert _match("info", [help_row]) == KeywordMatch("INFO", KeywordAction.HELP, "Call us", "k2")


# --- YES and CONFIRM -----------------------------------------------------------------------


def test_yes_confirms_a_pending_opt_in() -> None:
    assert _match("Yes!", pending=True) == KeywordMatch("YES", KeywordAction.CONFIRM)


def test_yes_without_a_pending_opt_in_opts_in() -> None:
    assert _match("yes", pending=False) == KeywordMatch("YES", KeywordAction.OPT_IN)


def test_yes_row_supplies_the_reply_either_way() -> None:
    row = Keyword("YES", KeywordAction.CONFIRM, "Confirmed", configuration_id=CONFIG, id="y")
    assert _match("yes", [row], pending=True) == KeywordMatch(
        "YES", KeywordAction.CONFIRM, "Confirmed", "y"
    )
    assert _match("yes", [row], pending=False) == KeywordMatch(
        "YES", KeywordAction.OPT_IN, "Confirmed", "y"
    )


def test_start_stays_opt_in_while_an_opt_in_is_pending() -> None:
    assert _match("start", pending=True) == KeywordMatch("START", KeywordAction.OPT_IN)


def test_an_admin_confirm_word_confirms_only_while_an_opt_in_is_pending() -> None:
    row = Keyword("Y", KeywordAction.CONFIRM, "Thanks", configuration_id=CONFIG, id="c")
    assert _match("y", [row], pending=True) == KeywordMatch(
        "Y", KeywordAction.CONFIRM, "Thanks", "c"
    )
    assert _match("y", [row], pending=False) is None


# --- admin rows ----------------------------------------------------------------------------


def test_an_admin_word_matches_with_its_action_and_reply() -> None:
    row = Keyword(" hours ", KeywordAction.AUTO_REPLY, "9-5", configuration_id=CONFIG, id="h")
    assert _match("Hours?", [row]) == KeywordMatch("HOURS", KeywordAction.AUTO_REPLY, "9-5", "h")
    arret = Keyword("ARR\u00caT", KeywordAction.OPT_OUT, None, id="a")
    assert _match("arr\u00eat", [arret]) == KeywordMatch(
        "ARR\u00caT", KeywordAction.OPT_OUT, None, "a"
    )


def test_an_admin_word_is_matched_as_normalized_too() -> None:
    row = Keyword("Hours!", KeywordAction.AUTO_REPLY, "9-5", id="h")
    assert _match("hours", [row]) == KeywordMatch("HOURS", KeywordAction.AUTO_REPLY, "9-5", "h")


def test_inactive_rows_are_ignored() -> None:
    row = Keyword("HOURS", KeywordAction.AUTO_REPLY, "9-5", configuration_id=CONFIG, active=False)
    assert _match("hours", [row]) is None
    stop = Keyword("STOP", KeywordAction.OPT_OUT, "Bye", configuration_id=CONFIG, active=False)
    assert _match("stop", [stop]) == KeywordMatch("STOP", KeywordAction.OPT_OUT)


def test_rows_of_other_configurations_are_ignored() -> None:
    row = Keyword("HOURS", KeywordAction.AUTO_REPLY, "9-5", configuration_id=OTHER, id="o")
    assert _match("hours", [row]) is None
    stop = Keyword("STOP", KeywordAction.OPT_OUT, "Other bye", configuration_id=OTHER, id="o")
    assert _match("stop", [stop]) == KeywordMatch("STOP", KeywordAction.OPT_OUT)


@pytest.mark.parametrize("order", [1, -1])
def test_the_configurations_row_wins_over_a_global_row(order: int) -> None:
    rows = [
        Keyword("HOURS", KeywordAction.AUTO_REPLY, "global", id="g"),
        Keyword("hours", KeywordAction.HELP, "ours", configuration_id=CONFIG, id="c"),
    ][::order]
    assert _match("hours", rows) == KeywordMatch("HOURS", KeywordAction.HELP, "ours", "c")


def test_a_global_row_applies_when_the_configuration_has_none() -> None:
    row = Keyword("HOURS", KeywordAction.AUTO_REPLY, "global", id="g")
    assert _match("hours", [row]) == KeywordMatch("HOURS", KeywordAction.AUTO_REPLY, "global", "g")


def test_without_a_configuration_only_global_rows_apply() -> None:
    rows = [
        Keyword("HOURS", KeywordAction.AUTO_REPLY, "ours", configuration_id=CONFIG, id="c"),
        Keyword("MENU", KeywordAction.AUTO_REPLY, "global", id="g"),
    ]
    assert match("hours", rows, configuration_id=None, pending_opt_in=False) is None
    assert match("menu", rows, configuration_id=None, pending_opt_in=False) == KeywordMatch(
        "MENU", KeywordAction.AUTO_REPLY, "global", "g"
    )


# --- mentions_opt_out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("please stop texting me", 'mentions "stop"'),
        ("STOP STOP", 'mentions "stop"'),
        ("Stop. Now.", 'mentions "stop"'),
        ("non-stop", 'mentions "stop"'),
        ("I want to unsubscribe please", 'mentions "unsubscribe"'),
        ("how do I opt out?", 'mentions "opt out"'),
        ("Opt-Out", 'mentions "opt out"'),
        ("please remove me from this list", 'mentions "remove me"'),
        ("do not text this number", 'mentions "do not text"'),
        ("Don't text me again", 'mentions "don\'t text"'),
        ("don\u2019t text me", 'mentions "don\'t text"'),
        ("dont  text me", 'mentions "dont text"'),
        ("I'll cancel the appointment", 'mentions "cancel"'),
        ("\uff53\uff54\uff4f\uff50 please", 'mentions "stop"'),  # full-width
        ("quit it, then stop", 'mentions "quit"'),  # the first mention
    ],
)
def test_a_body_that_mentions_an_opt_out_is_flagged(body: str, reason: str) -> None:
    assert _match(body) is None
    assert mentions_opt_out(body) == reason


@pytest.mark.parametrize(
    "body",
    [
        "stopping by later",
        "bestop",
        "unstoppable",
        "the endgame",
        "hello",
        "",
        "optional outing",
        "remove media",
        "stop_it",
    ],
)
def test_a_body_without_a_whole_opt_out_word_is_not_flagged(body: str) -> None:
    assert mentions_opt_out(body) is None


@pytest.mark.parametrize("body", ["STOP", "stop!", " Unsubscribe. ", "OPTOUT", "yes", "help"])
def test_a_keyword_is_not_flagged(body: str) -> None:
    assert mentions_opt_out(body) is None


# --- properties ----------------------------------------------------------------------------

ANY_TEXT = st.text(
    st.characters(codec=None, exclude_categories=())
    | st.characters(categories=("Cs", "Mn", "Me"))
    | st.sampled_from("sStToOpP !.\u00a0\u200b\ufe0f"),
    max_size=60,
)
DECORATION = st.text(
    st.characters(categories=("Zs", "Zl", "Zp", "Po", "Pd", "Ps", "Pe", "So", "Sm", "Cc", "Cf")),
    max_size=5,
)
WORDS = [*STOP_WORDS, *START_WORDS, *HELP_WORDS, "hours", "y", "menu", "stop it", "Stop\u2122"]
BODIES = st.one_of(ANY_TEXT, st.sampled_from(WORDS))
ROWS = st.lists(
    st.builds(
        Keyword,
        keyword=st.one_of(ANY_TEXT, st.sampled_from(["hours", "yes", "stop", "y", "menu"])),
        action=st.sampled_from(KeywordAction),
        reply_text=st.none() | st.text(max_size=5),
        configuration_id=st.sampled_from([None, CONFIG, OTHER]),
        id=st.none() | st.text(max_size=3),
        active=st.booleans(),
    ),
    max_size=4,
)


@PROPERTY
@given(ANY_TEXT, ROWS, st.booleans())
def test_nothing_raises_on_any_text(body: str, rows: list[Keyword], pending: bool) -> None:
    word = normalize(body)
    assert word == word.strip()
    result = match(body, rows, configuration_id=CONFIG, pending_opt_in=pending)
    assert result is None or result.word == word
    reason = mentions_opt_out(body)
    assert reason is None or reason.startswith("mentions ")


@PROPERTY
@given(ANY_TEXT)
def test_normalize_is_idempotent(body: str) -> None:
    assert normalize(normalize(body)) == normalize(body)


@PROPERTY
@given(BODIES, DECORATION, DECORATION, ROWS, st.booleans())
def test_match_ignores_surrounding_whitespace_and_punctuation(
    body: str, before: str, after: str, rows: list[Keyword], pending: bool
) -> None:
    plain = match(body, rows, configuration_id=CONFIG, pending_opt_in=pending)
    decorated = match(before + body + after, rows, configuration_id=CONFIG, pending_opt_in=pending)
    assert decorated == plain


@PROPERTY
@given(
    st.sampled_from(STOP_WORDS),
    st.lists(st.booleans(), min_size=11, max_size=11),
    st.tuples(DECORATION, DECORATION),
    ROWS,
    st.booleans(),
)
def test_every_stop_word_in_any_case_and_dress_opts_out(
    word: str, upper: list[bool], dress: tuple[str, str], rows: list[Keyword], pending: bool
) -> None:
    cased = "".join(ch if up else ch.lower() for ch, up in zip(word, upper, strict=False))
    body = dress[0] + cased + dress[1]
    result = match(body, rows, configuration_id=CONFIG, pending_opt_in=pending)
    assert result is not None
    assert result.action is KeywordAction.OPT_OUT
    assert result.word == word
    assert mentions_opt_out(body) is None


@PROPERTY
@given(BODIES, st.booleans())
def test_a_body_that_matches_is_never_flagged(body: str, pending: bool) -> None:
    if match(body, [], configuration_id=CONFIG, pending_opt_in=pending) is not None:
        assert mentions_opt_out(body) is None
