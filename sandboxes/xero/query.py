"""The `where` and `order` query parameters, in the subset of Xero's syntax that integrations use.

Supported: comparisons (`==`, `=`, `!=`, `<`, `<=`, `>`, `>=`) of a dotted field path with a string,
number, `true`/`false`/`null`, `guid("…")` or `DateTime(y, m, d)`; the string methods `StartsWith`,
`EndsWith`, `Contains`; `AND`/`&&`, `OR`/`||` and parentheses. Anything else is a QueryParseException,
as Xero answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|<=|>=|&&|\|\||[=<>(),.])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """The filter or order cannot be understood."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise QueryError(f"unexpected character at position {position} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def lookup(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring a stored value and a literal to one type: numbers as Decimal, dates as date."""
    if isinstance(right, Decimal) and left is not None and not isinstance(left, bool):
        try:
            return Decimal(str(left)), right
        except InvalidOperation:
            return left, right
    if isinstance(right, date) and isinstance(left, str):
        try:
            return date.fromisoformat(left[:10]), right
        except ValueError:
            return left, right
    if isinstance(right, str) and isinstance(left, str) and _looks_like_guid(right):
        return left.lower(), right.lower()
    return left, right


def _looks_like_guid(value: str) -> bool:
    return bool(
        re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", value)
    )


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a is not None and a < b,
    "<=": lambda a, b: a is not None and a <= b,
    ">": lambda a, b: a is not None and a > b,
    ">=": lambda a, b: a is not None and a >= b,
}
_METHODS: dict[str, Callable[[str, str], bool]] = {
    "StartsWith": str.startswith,
    "EndsWith": str.endswith,
    "Contains": lambda value, part: part in value,
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError(f"unexpected end of filter {self.text!r}")
        if expected is not None and token[1] != expected:
            raise QueryError(f"expected {expected!r} but found {token[1]!r} in {self.text!r}")
        self.index += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise QueryError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while (token := self.peek()) is not None and token[1] in ("OR", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda doc: any(part(doc) for part in parts))

    def conjunction(self) -> Predicate:
        parts = [self.term()]
        while (token := self.peek()) is not None and token[1] in ("AND", "&&"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda doc: all(part(doc) for part in parts))

    def term(self) -> Predicate:
        if (token := self.peek()) is not None and token[1] == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        kind, name = self.take()
        if kind != "name":
            raise QueryError(f"expected a field name but found {name!r} in {self.text!r}")
        path = [name]
        while (token := self.peek()) is not None and token[1] == ".":
            self.take(".")
            _, part = self.take()
            if part in _METHODS:
                return self.method(".".join(path), part)
            path.append(part)
        field = ".".join(path)
        kind, op = self.take()
        if op not in _COMPARE:
            raise QueryError(f"expected a comparison after {field!r} but found {op!r} in {self.text!r}")
        literal = self.literal()
        compare = _COMPARE[op]

        def predicate(doc: Doc) -> bool:
            left, right = _comparable(lookup(doc, field), literal)
            try:
                return bool(compare(left, right))
            except TypeError:
                return False

        return predicate

    def method(self, field: str, method: str) -> Predicate:
        self.take("(")
        kind, token = self.take()
        if kind != "string":
            raise QueryError(f"{method} takes a string in {self.text!r}")
        self.take(")")
        argument = _unquote(token)
        check = _METHODS[method]
        return lambda doc: isinstance(value := lookup(doc, field), str) and check(value, argument)

    def literal(self) -> Any:
        kind, token = self.take()
        if kind == "string":
            return _unquote(token)
        if kind == "number":
            return Decimal(token)
        if token in ("true", "false"):
            return token == "true"
        if token == "null":
            return None
        if token.lower() == "guid":
            self.take("(")
            _, quoted = self.take()
            self.take(")")
            return _unquote(quoted)
        if token in ("DateTime", "DateTimeOffset"):
            self.take("(")
            numbers = [int(self.take()[1])]
            while (next_token := self.peek()) is not None and next_token[1] == ",":
                self.take(",")
                numbers.append(int(self.take()[1]))
            self.take(")")
            if len(numbers) < 3:
                raise QueryError(f"DateTime needs year, month and day in {self.text!r}")
            return date(numbers[0], numbers[1], numbers[2])
        raise QueryError(f"unexpected {token!r} in {self.text!r}")


def where(text: str | None) -> Predicate:
    if text is None or not text.strip():
        return lambda doc: True
    return _Parser(text).parse()


def order(docs: list[Doc], text: str | None) -> list[Doc]:
    if not text or not text.strip():
        return docs
    result = list(docs)
    # Sort by the last key first so earlier keys win (a stable sort makes this a multi-key sort).
    for clause in reversed([part.strip() for part in text.split(",") if part.strip()]):
        field, _, direction = clause.partition(" ")
        direction = direction.strip().upper() or "ASC"
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"order direction must be ASC or DESC, got {direction!r}")

        def key(doc: Doc, field: str = field) -> tuple[bool, tuple[int, Any]]:
            value = lookup(doc, field)
            return (value is None, _sortable(value))

        result.sort(key=key, reverse=direction == "DESC")
    return result


def _sortable(value: Any) -> tuple[int, Any]:
    # Numbers (stored as strings) sort numerically, everything else as text; the tag keeps them apart.
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, int | Decimal):
        return (0, Decimal(value))
    try:
        return (0, Decimal(str(value)))
    except InvalidOperation:
        return (1, str(value))
