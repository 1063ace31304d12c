"""The subset of SOQL the sandbox understands.

    SELECT field[, Parent.field, ...] | COUNT()
    FROM sObject
    [WHERE field op value [AND field op value ...]]     op: = != < <= > >= IN NOT IN
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST][, ...]]
    [LIMIT n]

Anything else is answered MALFORMED_QUERY, naming what this sandbox does not support, so a query that
works here is valid SOQL, though not every valid SOQL query works here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandboxes.salesforce import ids
from sandboxes.salesforce.errors import SfError, malformed_query
from sandboxes.salesforce.org import Org, typed_value
from sandboxes.salesforce.schema import Field, SObjectType

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<date>\d{4}-\d{2}-\d{2})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "'": "'",
    '"': '"',
    "\\": "\\",
    "_": "\\_",
    "%": "\\%",
}
_UNSUPPORTED = {
    "OR",
    "NOT",
    "GROUP",
    "HAVING",
    "OFFSET",
    "TYPEOF",
    "WITH",
    "FOR",
    "LIKE",
    "INCLUDES",
    "EXCLUDES",
    "USING",
    "SUM",
    "MAX",
    "MIN",
    "AVG",
}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any = None


@dataclass(frozen=True)
class Selected:
    path: tuple[str, ...]  # ("Name",) or ("Account", "Name") in canonical casing
    field: Field
    relationship: Field | None = None


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str
    values: tuple[Any, ...]


@dataclass
class Query:
    sobject: SObjectType
    count_only: bool = False
    selected: list[Selected] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    order_by: list[tuple[Field, bool, bool]] = field(default_factory=list)  # field, descending, nulls_last
    limit: int | None = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise malformed_query(f"unexpected token: '{text[position:].split()[0]}'")
        position = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            tokens.append(Token("string", raw, _unescape(raw[1:-1])))
        elif kind == "number":
            tokens.append(Token("number", raw, Decimal(raw)))
        else:
            tokens.append(Token(kind, raw, raw))
    return tokens


def _unescape(body: str) -> str:
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 1
            escaped = body[index] if index < len(body) else ""
            if escaped not in _ESCAPES:
                raise malformed_query(
                    f"Invalid string literal '{body}'. Illegal character sequence '\\{escaped}'"
                )
            out.append(_ESCAPES[escaped])
        else:
            out.append(char)
        index += 1
    return "".join(out)


class _Parser:
    def __init__(self, org: Org, text: str) -> None:
        self.org = org
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise malformed_query("unexpected end of query")
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text.upper() == text

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() == word:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            raise malformed_query(f"expecting '{word}', found '{token.text if token else 'end of query'}'")

    def expect(self, text: str) -> None:
        token = self.next()
        if token.text != text:
            raise malformed_query(f"expecting '{text}', found '{token.text}'")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        raw_fields: list[str] = []
        count_only = False
        if self.at("COUNT"):
            self.next()
            self.expect("(")
            if not self.at(")"):
                raise malformed_query("the sandbox's SOQL subset supports COUNT() only, not COUNT(field)")
            self.next()
            count_only = True
        else:
            while True:
                token = self.next()
                if token.kind != "word":
                    raise malformed_query(f"unexpected token: '{token.text}'")
                following = self.peek()
                if token.text.upper() in _UNSUPPORTED or (following is not None and following.text == "("):
                    raise malformed_query(f"the sandbox's SOQL subset does not support '{token.text}'")
                raw_fields.append(token.text)
                if not self.at(","):
                    break
                self.next()
        self.expect_keyword("FROM")
        sobject_token = self.next()
        try:
            sobject = self.org.sobject(sobject_token.text)
        except SfError as exc:
            raise SfError(
                400,
                "INVALID_TYPE",
                f"sObject type '{sobject_token.text}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the entity name.",
            ) from exc
        query = Query(sobject=sobject, count_only=count_only)
        query.selected = [self._selected(sobject, name) for name in raw_fields]
        if self.keyword("WHERE"):
            query.conditions.append(self._condition(sobject))
            while self.keyword("AND"):
                query.conditions.append(self._condition(sobject))
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            while True:
                order_field = self._plain_field(sobject, self.next().text)
                descending = self.keyword("DESC")
                if not descending:
                    self.keyword("ASC")
                nulls_last = descending
                if self.keyword("NULLS"):
                    if self.keyword("LAST"):
                        nulls_last = True
                    else:
                        self.expect_keyword("FIRST")
                        nulls_last = False
                query.order_by.append((order_field, descending, nulls_last))
                if not self.at(","):
                    break
                self.next()
        if self.keyword("LIMIT"):
            token = self.next()
            if token.kind != "number" or token.value != token.value.to_integral_value() or token.value < 0:
                raise malformed_query(f"expecting a non-negative integer after LIMIT, found '{token.text}'")
            query.limit = int(token.value)
        leftover = self.peek()
        if leftover is not None:
            if leftover.text.upper() in _UNSUPPORTED:
                raise malformed_query(f"the sandbox's SOQL subset does not support '{leftover.text}'")
            raise malformed_query(f"unexpected token: '{leftover.text}'")
        return query

    def _plain_field(self, sobject: SObjectType, name: str) -> Field:
        definition = sobject.field(name)
        if definition is None:
            raise SfError(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{sobject.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the custom field "
                "name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        return definition

    def _selected(self, sobject: SObjectType, name: str) -> Selected:
        if "." not in name:
            definition = self._plain_field(sobject, name)
            return Selected(path=(definition.name,), field=definition)
        parts = name.split(".")
        if len(parts) != 2:
            raise malformed_query(f"the sandbox's SOQL subset follows one parent relationship, not '{name}'")
        relationship = sobject.relationship(parts[0])
        if relationship is None:
            raise SfError(
                400,
                "INVALID_FIELD",
                f"Didn't understand relationship '{parts[0]}' in field path. If "
                "you are attempting to use a custom relationship, be sure to append the '__r' after the "
                "custom relationship name.",
            )
        if len(relationship.reference_to) != 1:
            raise malformed_query(
                f"the sandbox's SOQL subset cannot follow polymorphic relationship '{parts[0]}'"
            )
        parent = self.org.sobject(relationship.reference_to[0])
        definition = self._plain_field(parent, parts[1])
        return Selected(
            path=(relationship.relationship_name or parts[0], definition.name),
            field=definition,
            relationship=relationship,
        )

    def _condition(self, sobject: SObjectType) -> Condition:
        if self.at("("):
            raise malformed_query("the sandbox's SOQL subset does not support parenthesised conditions")
        name = self.next()
        if name.kind != "word" or name.text.upper() in _UNSUPPORTED:
            raise malformed_query(f"the sandbox's SOQL subset does not support '{name.text}' in WHERE")
        if "." in name.text:
            raise malformed_query(
                f"the sandbox's SOQL subset filters on the queried object's own fields only, "
                f"not '{name.text}'"
            )
        definition = self._plain_field(sobject, name.text)
        if self.keyword("NOT"):
            self.expect_keyword("IN")
            return Condition(definition, "NOT IN", self._value_list(definition))
        if self.keyword("IN"):
            return Condition(definition, "IN", self._value_list(definition))
        token = self.next()
        if token.kind != "op":
            if token.text.upper() in _UNSUPPORTED:
                raise malformed_query(f"the sandbox's SOQL subset does not support '{token.text}'")
            raise malformed_query(f"unexpected token: '{token.text}'")
        op = "!=" if token.text == "<>" else token.text
        return Condition(definition, op, (self._value(definition, self.next()),))

    def _value_list(self, definition: Field) -> tuple[Any, ...]:
        self.expect("(")
        values = [self._value(definition, self.next())]
        while self.at(","):
            self.next()
            values.append(self._value(definition, self.next()))
        self.expect(")")
        return tuple(values)

    def _value(self, definition: Field, token: Token) -> Any:
        if token.kind == "word" and token.text.lower() == "null":
            return None
        kind = definition.type
        if kind == "boolean":
            if token.kind == "word" and token.text.lower() in ("true", "false"):
                return token.text.lower() == "true"
            raise _filter_type_error(definition, "boolean")
        if kind in ("currency", "percent", "int"):
            if token.kind != "number":
                raise _filter_type_error(definition, "double")
            return token.value
        if kind == "date":
            if token.kind != "date":
                raise _filter_type_error(definition, "date")
            return token.text
        if kind == "datetime":
            if token.kind != "datetime":
                raise _filter_type_error(definition, "datetime")
            return token.text
        if token.kind != "string":
            raise _filter_type_error(definition, "string")
        if kind in ("id", "reference"):
            record_id = ids.to_18(token.value)
            if record_id is None:
                raise SfError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {token.value}")
            return record_id
        return token.value


def _filter_type_error(definition: Field, expected: str) -> SfError:
    quoted = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
    return SfError(
        400,
        "INVALID_QUERY_FILTER_OPERATOR",
        f"value of filter criterion for field '{definition.name}' must be of type {expected} and {quoted}",
    )


def parse(org: Org, text: str) -> Query:
    return _Parser(org, text).parse()


def _comparable(definition: Field, value: Any) -> Any:
    if value is None:
        return None
    if definition.type in ("currency", "percent", "int"):
        return Decimal(str(value))
    if definition.type in ("string", "textarea", "email", "picklist"):
        # SOQL compares text case-insensitively.
        return str(value).casefold()
    if definition.type == "datetime":
        return str(value)[:19]
    return value


def _matches(condition: Condition, doc: dict[str, Any]) -> bool:
    actual = _comparable(condition.field, doc.get(condition.field.name))
    wanted = [_comparable(condition.field, value) for value in condition.values]
    if condition.op == "=":
        return actual == wanted[0]
    if condition.op == "!=":
        return actual != wanted[0]
    if condition.op == "IN":
        return actual in wanted
    if condition.op == "NOT IN":
        return actual not in wanted
    if actual is None or wanted[0] is None:
        return False
    if condition.op == "<":
        return bool(actual < wanted[0])
    if condition.op == "<=":
        return bool(actual <= wanted[0])
    if condition.op == ">":
        return bool(actual > wanted[0])
    return bool(actual >= wanted[0])


def _sort_key(order_field: Field) -> Callable[[dict[str, Any]], Any]:
    return lambda doc: _comparable(order_field, doc[order_field.name])


def matching_ids(org: Org, query: Query) -> list[str]:
    docs = [doc for doc in org.records(query.sobject.name) if all(_matches(c, doc) for c in query.conditions)]
    for order_field, descending, nulls_last in reversed(query.order_by):
        present = [doc for doc in docs if doc.get(order_field.name) is not None]
        absent = [doc for doc in docs if doc.get(order_field.name) is None]
        present.sort(key=_sort_key(order_field), reverse=descending)
        docs = present + absent if nulls_last else absent + present
    if query.limit is not None:
        docs = docs[: query.limit]
    return [doc["Id"] for doc in docs]


def render_row(org: Org, query: Query, doc: dict[str, Any], version: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "attributes": {
            "type": query.sobject.name,
            "url": f"/services/data/{version}/sobjects/{query.sobject.name}/{doc['Id']}",
        }
    }
    for selected in query.selected:
        if selected.relationship is None:
            row[selected.field.name] = typed_value(selected.field, doc.get(selected.field.name))
            continue
        relationship_name, field_name = selected.path
        parent_id = doc.get(selected.relationship.name)
        parent_type = selected.relationship.reference_to[0]
        parent = org.get(parent_type, parent_id) if parent_id else None
        if parent is None:
            row[relationship_name] = None
            continue
        nested = row.get(relationship_name)
        if nested is None:
            nested = {
                "attributes": {
                    "type": parent_type,
                    "url": f"/services/data/{version}/sobjects/{parent_type}/{parent_id}",
                }
            }
            row[relationship_name] = nested
        nested[field_name] = typed_value(selected.field, parent.get(field_name))
    return row
