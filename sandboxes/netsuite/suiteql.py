"""The slice of SuiteQL the sandbox answers: one table, a WHERE of comparisons, ORDER BY, paged.

    SELECT col [AS alias], ... | *  FROM table  [WHERE cond]  [ORDER BY col [ASC|DESC], ...]

Conditions combine with AND, OR, NOT and parentheses; a comparison is `=`, `!=`/`<>`, `<`, `<=`, `>`, `>=`,
`[NOT] LIKE 'pattern'` (% and _), `[NOT] IN (value, ...)` or `IS [NOT] NULL`; operands are columns, string
and number literals, LOWER(x), UPPER(x), and TO_TIMESTAMP / TO_DATE of a literal in the formats
'YYYY-MM-DD HH24:MI:SS' and 'YYYY-MM-DD'. Identifiers are case-insensitive; results come back with lower-case
keys, as NetSuite's do. Anything else is refused the way NetSuite refuses a query it cannot parse (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

Row = dict[str, Any]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)|(?P<op><>|!=|<=|>=|[=<>(),*])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_FORMATS = {"YYYY-MM-DD HH24:MI:SS": "%Y-%m-%d %H:%M:%S", "YYYY-MM-DD": "%Y-%m-%d"}


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    query = query.strip().rstrip(";")
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            raise QueryError(f"Invalid search query: unexpected text at {query[position : position + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


Expr = Callable[[Row], Any]


@dataclass
class Query:
    columns: list[tuple[str, str]] | None  # (source column, output name); None: *
    table: str
    where: Expr | None
    order: list[tuple[str, bool]]


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.position += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            found = self.peek()
            raise QueryError(f"Invalid search query: expected {word}, found {found.text if found else 'end'}")

    def symbol(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == text:
            self.position += 1
            return True
        return False

    def expect_symbol(self, text: str) -> None:
        if not self.symbol(text):
            raise QueryError(f"Invalid search query: expected {text!r}")

    def identifier(self) -> str:
        token = self.peek()
        if token is None or token.kind != "word":
            raise QueryError("Invalid search query: expected a column or table name")
        self.position += 1
        return token.text.lower().rsplit(".", 1)[-1]

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        columns: list[tuple[str, str]] | None
        if self.symbol("*"):
            columns = None
        else:
            columns = []
            while True:
                name = self.identifier()
                alias = name
                if self.keyword("AS"):
                    alias = self.identifier()
                columns.append((name, alias))
                if not self.symbol(","):
                    break
        self.expect_keyword("FROM")
        table = self.identifier()
        where = self.condition() if self.keyword("WHERE") else None
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            while True:
                column = self.identifier()
                descending = self.keyword("DESC")
                if not descending:
                    self.keyword("ASC")
                order.append((column, descending))
                if not self.symbol(","):
                    break
        if self.peek() is not None:
            raise QueryError(f"Invalid search query: unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return Query(columns=columns, table=table, where=where, order=order)

    def condition(self) -> Expr:
        left = self.conjunction()
        while self.keyword("OR"):
            right = self.conjunction()
            left = (lambda a, b: lambda row: bool(a(row)) or bool(b(row)))(left, right)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.keyword("AND"):
            right = self.negation()
            left = (lambda a, b: lambda row: bool(a(row)) and bool(b(row)))(left, right)
        return left

    def negation(self) -> Expr:
        if self.keyword("NOT"):
            inner = self.negation()
            return lambda row: not inner(row)
        # No operand starts with "(", so one here opens a parenthesised condition.
        if self.symbol("("):
            inner = self.condition()
            self.expect_symbol(")")
            return inner
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        if self.keyword("IS"):
            negate = self.keyword("NOT")
            self.expect_keyword("NULL")
            return lambda row: (left(row) is None) != negate
        negate = self.keyword("NOT")
        if self.keyword("LIKE"):
            pattern = self.operand()
            return lambda row: _like(left(row), pattern(row)) != negate
        if self.keyword("IN"):
            self.expect_symbol("(")
            values = [self.operand()]
            while self.symbol(","):
                values.append(self.operand())
            self.expect_symbol(")")
            return lambda row: any(_equal(left(row), value(row)) for value in values) != negate
        if negate:
            raise QueryError("Invalid search query: NOT must be followed by LIKE or IN here")
        token = self.peek()
        if token is None or token.kind != "op" or token.text not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            raise QueryError("Invalid search query: expected a comparison")
        self.position += 1
        right = self.operand()
        operator = token.text
        return lambda row: _compare(operator, left(row), right(row))

    def operand(self) -> Expr:
        token = self.peek()
        if token is None:
            raise QueryError("Invalid search query: expected a value")
        self.position += 1
        if token.kind == "string":
            text = token.text[1:-1].replace("''", "'")
            return lambda row: text
        if token.kind == "number":
            number = Decimal(token.text)
            return lambda row: number
        if token.kind == "word" and self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
            return self.function(token.text.upper())
        if token.kind == "word":
            column = token.text.lower().rsplit(".", 1)[-1]
            return lambda row: _column(row, column)
        raise QueryError(f"Invalid search query: unexpected {token.text!r}")

    def function(self, name: str) -> Expr:
        self.expect_symbol("(")
        arguments = [self.operand()]
        while self.symbol(","):
            arguments.append(self.operand())
        self.expect_symbol(")")
        if name in ("LOWER", "UPPER") and len(arguments) == 1:
            (argument,) = arguments
            change = str.lower if name == "LOWER" else str.upper
            return lambda row: None if argument(row) is None else change(str(argument(row)))
        if name in ("TO_TIMESTAMP", "TO_DATE") and len(arguments) == 2:
            text, layout = (argument({}) for argument in arguments)
            if layout not in _FORMATS:
                raise QueryError(f"Invalid search query: unsupported date format {layout!r}")
            try:
                moment = datetime.strptime(str(text), _FORMATS[layout]).replace(tzinfo=UTC)
            except ValueError:
                raise QueryError(f"Invalid search query: {text!r} does not match {layout!r}") from None
            value: datetime | date = moment if name == "TO_TIMESTAMP" else moment.date()
            return lambda row: value
        raise QueryError(f"Invalid search query: unsupported function {name}")


def _column(row: Row, column: str) -> Any:
    if column not in row:
        raise QueryError(f"Invalid search query: unknown column {column!r}")
    return row[column]


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, datetime) and isinstance(right, date) and not isinstance(right, datetime):
        return left.date(), right
    if isinstance(right, datetime) and isinstance(left, date) and not isinstance(left, datetime):
        return left, right.date()
    if isinstance(left, Decimal) and isinstance(right, str):
        return left, Decimal(right)
    if isinstance(right, Decimal) and isinstance(left, str):
        try:
            return Decimal(left), right
        except ArithmeticError:
            return left, str(right)
    return left, right


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    a, b = _comparable(left, right)
    return bool(a == b)


def _compare(operator: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    a, b = _comparable(left, right)
    if operator == "=":
        return bool(a == b)
    if operator in ("!=", "<>"):
        return bool(a != b)
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator])
    except TypeError:
        raise QueryError(f"Invalid search query: cannot compare {a!r} with {b!r}") from None


def _like(value: Any, pattern: Any) -> bool:
    if value is None or pattern is None:
        return False
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern))
    return re.fullmatch(regex, str(value), flags=re.DOTALL) is not None


def parse(query: str) -> Query:
    return _Parser(tokenize(query)).parse()


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    if isinstance(value, str) and value.isdigit():
        return (0, Decimal(value))
    return (0, value)


def run(query: Query, rows: Iterable[Row]) -> list[Row]:
    selected = [row for row in rows if query.where is None or query.where(row)]
    for column, descending in reversed(query.order):

        def key(row: Row, column: str = column) -> tuple[int, Any]:
            return _sort_key(_column(row, column))

        selected.sort(key=key, reverse=descending)
    if query.columns is None:
        return [dict(row) for row in selected]
    return [{alias: _column(row, name) for name, alias in query.columns} for row in selected]


def rendered(value: Any) -> Any:
    """A value as NetSuite's SuiteQL results carry it: text, dates in the M/D/YYYY of a US user's
    preferences, and no key at all for an empty value (the caller drops None)."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, datetime):
        return f"{value.month}/{value.day}/{value.year} {value:%H:%M:%S}"
    if isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
