"""OData query options: a ``$filter`` parser and its SQL and in-memory evaluators.

A small recursive-descent parser covers the subset Dataverse's Web API accepts and the
connector uses (``eq ne gt ge lt le``, ``and or not``, parentheses, ``contains``,
``startswith``, ``endswith``, ``null``, GUID, number, boolean, date and ``'O''Brien'``
literals, ``_x_value`` lookups). It is hand-written rather than taken from ``odata-query``
because that library emits SQLAlchemy ORM clauses for mapped classes, while the emulator's
tables are defined at run time from metadata, and because Dataverse's rules (string
comparison without case, SQL wildcards honoured inside ``contains``) differ from plain OData.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.emulators.dataverse.protocol import bad_request

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
    | (?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<punct>[(),])
    | (?P<name>[A-Za-z_@$][\w./@$]*)
    )""",
    re.VERBOSE,
)
COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
STRING_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Node:
    """An expression node: ``kind`` is cmp, and, or, not, func, prop or lit."""

    kind: str
    value: Any = None
    args: tuple[Node, ...] = ()


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split a filter into (kind, text) tokens; 400 on anything unrecognised."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise bad_request(f"Syntax error at position {pos} in '{text}'.", "0x80060888")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise bad_request(f"Syntax error: unexpected end of '{self.text}'.")
        self.pos += 1
        return token

    def expect(self, punct: str) -> None:
        _, value = self.take()
        if value != punct:
            raise bad_request(f"Syntax error: expected '{punct}' in '{self.text}'.")

    def word(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "name" and token[1] in words:
            self.pos += 1
            return token[1]
        return None

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise bad_request(f"Syntax error at '{self.peek()[1]}' in '{self.text}'.")  # type: ignore[index]
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.word("or"):
            node = Node("or", None, (node, self.parse_and()))
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.word("and"):
            node = Node("and", None, (node, self.parse_unary()))
        return node

    def parse_unary(self) -> Node:
        if self.word("not"):
            return Node("not", None, (self.parse_unary(),))
        left = self.parse_operand()
        op = self.word(*COMPARISONS)
        if op is None:
            return left
        return Node("cmp", op, (left, self.parse_operand()))

    def parse_operand(self) -> Node:
        kind, value = self.take()
        if value == "(":
            node = self.parse_or()
            self.expect(")")
            return node
        if kind == "str":
            return Node("lit", value[1:-1].replace("''", "'"))
        if kind == "guid":
            return Node("lit", value.lower())
        if kind == "date":
            return Node("lit", normalise_datetime(value))
        if kind == "num":
            return Node("lit", float(value) if "." in value else int(value))
        if kind == "name":
            return self.parse_name(value)
        raise bad_request(f"Syntax error at '{value}' in '{self.text}'.")

    def parse_name(self, value: str) -> Node:
        if value in ("null", "true", "false"):
            return Node("lit", {"null": None, "true": True, "false": False}[value])
        token = self.peek()
        if token and token[1] == "(":
            if value not in STRING_FUNCTIONS:
                raise bad_request(f"The function '{value}' is not supported.", "0x80060888")
            self.take()
            args = [self.parse_operand()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                args.append(self.parse_operand())
            self.expect(")")
            return Node("func", value, tuple(args))
        return Node("prop", value)


def parse_filter(text: str) -> Node:
    """Parse a ``$filter`` expression."""
    return _Parser(text).parse()


def normalise_datetime(value: str) -> str:
    """ISO date or date-time to the stored form ``YYYY-MM-DDTHH:MM:SSZ``."""
    if len(value) == 10:
        return value + "T00:00:00Z"
    value = value.replace("+00:00", "Z")
    if len(value) == 16:
        return value + ":00Z"
    if "." in value:
        value = value.split(".")[0] + "Z"
    return value if value.endswith("Z") else value + "Z"


ColumnOf = Callable[[str], str]


def to_sql(node: Node, column_of: ColumnOf, params: list[Any]) -> str:
    """Compile to a SQL condition; ``column_of`` maps a property to a quoted column."""
    if node.kind in ("and", "or"):
        first, second = (to_sql(arg, column_of, params) for arg in node.args)
        return f"({first} {node.kind.upper()} {second})"
    if node.kind == "not":
        return f"(NOT {to_sql(node.args[0], column_of, params)})"
    if node.kind == "func":
        return _func_sql(node, column_of, params)
    if node.kind == "cmp":
        left, right = node.args
        if right.kind == "lit" and right.value is None:
            negation = "NOT " if node.value == "ne" else ""
            return f"({_operand_sql(left, column_of, params)} IS {negation}NULL)"
        lhs = _operand_sql(left, column_of, params)
        rhs = _operand_sql(right, column_of, params)
        return f"({lhs} {COMPARISONS[node.value]} {rhs})"
    if node.kind == "prop":
        return f"({column_of(node.value)} = 1)"
    raise bad_request("A filter must be a condition.")


def _operand_sql(node: Node, column_of: ColumnOf, params: list[Any]) -> str:
    if node.kind == "prop":
        return column_of(node.value)
    if node.kind == "lit":
        value = node.value
        params.append(int(value) if isinstance(value, bool) else value)
        return "?"
    raise bad_request("Comparisons take a property and a literal.")


def _func_sql(node: Node, column_of: ColumnOf, params: list[Any]) -> str:
    if len(node.args) != 2 or node.args[0].kind != "prop" or node.args[1].kind != "lit":
        raise bad_request(f"'{node.value}' takes a property and a string literal.")
    text = str(node.args[1].value)
    pattern = {"contains": f"%{text}%", "startswith": f"{text}%", "endswith": f"%{text}"}
    params.append(pattern[str(node.value)])
    return f"({column_of(node.args[0].value)} LIKE ?)"


def evaluate(node: Node, row: dict[str, Any]) -> bool:
    """Evaluate against a dict (metadata queries); strings compare without case."""
    if node.kind == "and":
        return evaluate(node.args[0], row) and evaluate(node.args[1], row)
    if node.kind == "or":
        return evaluate(node.args[0], row) or evaluate(node.args[1], row)
    if node.kind == "not":
        return not evaluate(node.args[0], row)
    if node.kind == "func":
        haystack = str(_value(node.args[0], row) or "").lower()
        needle = str(_value(node.args[1], row)).lower()
        checks = {"contains": needle in haystack, "startswith": haystack.startswith(needle)}
        return checks.get(str(node.value), haystack.endswith(needle))
    if node.kind == "cmp":
        left, right = (_value(arg, row) for arg in node.args)
        return _compare(str(node.value), left, right)
    return bool(_value(node, row))


def _value(node: Node, row: dict[str, Any]) -> Any:
    value = row.get(node.value) if node.kind == "prop" else node.value
    if isinstance(value, dict) and "Value" in value:
        value = value["Value"]
    return value.lower() if isinstance(value, str) else value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    ops = {"gt": left > right, "ge": left >= right, "lt": left < right}
    return bool(ops.get(op, left <= right))


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes (``$select``, ``$expand``, keys)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current = ""
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == sep and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """``modifiedon desc,fullname`` -> [(name, descending)]."""
    result = []
    for part in split_top_level(text):
        name, _, direction = part.partition(" ")
        direction = direction.strip().lower()
        if direction not in ("", "asc", "desc"):
            raise bad_request(f"Invalid $orderby direction '{direction}'.")
        result.append((name.strip(), direction == "desc"))
    return result


@dataclass
class ExpandItem:
    """One ``$expand`` entry with its nested options."""

    nav: str
    options: dict[str, str]


def parse_expand(text: str) -> list[ExpandItem]:
    """``a($select=x,y;$top=2),b`` -> expand items."""
    items = []
    for part in split_top_level(text):
        nav, _, rest = part.partition("(")
        options: dict[str, str] = {}
        if rest:
            for option in split_top_level(rest[:-1], ";"):
                name, _, value = option.partition("=")
                options[name.strip()] = value.strip()
        items.append(ExpandItem(nav.strip(), options))
    return items
