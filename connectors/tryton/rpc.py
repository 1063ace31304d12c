"""Tryton's JSON-RPC protocol over httpx: tagged values, session login, faults mapped to the taxonomy.

Protocol as served by trytond 8.2 (trytond/protocols/jsonrpc.py, dispatcher.py, wsgi.py):

- `POST {url}/{database}/rpc/` with `{"id", "method", "params"}`; all three keys must be present or the
  server answers in its plain (non JSON-RPC) shape. Server-level calls go to `POST {url}/rpc/`.
- `common.db.login [login, {"password": pw}, language]` returns `[user_id, session_key, bus_url]`; later
  calls carry `Authorization: Session base64("login:user_id:session_key")`.
- Model calls are `model.<name>.<method>` with positional arguments and the context dict last.
- Business faults come back as HTTP 200 with `"error": ["UserError", [message, description, domain]]`
  (AccessError and every validation error are UserError subclasses and look the same on the wire),
  `["UserWarning", [name, message, description]]`, `["ConcurrencyException", message]`; any other server
  exception is `[str(exc), traceback]`. An expired or unknown session is HTTP 401, a method outside the
  model's `__rpc__` is 403, too many failed logins 429, an RPC timeout 504.

The session is renewed once on a 401 (expiry, or a "fresh session" method such as `account.invoice.post`
called with an old session). That resend is safe: trytond refuses the call before any transaction starts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    FieldError,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)
from connectors.http import DEFAULT_TIMEOUT, build_client, retry_after_seconds, send

SYSTEM = "tryton"

# Tryton's English validation messages name the field and the model: 'for field "Account" in "Invoice Line"'
# or 'for field "Account" in record "<name>" of "Account Invoice Line"'.
_FIELD_IN_MODEL = re.compile(r'field "(?P<field>[^"]+)" in (?:record "[^"]*" of )?"(?P<model>[^"]+)"')


class TrytonUserWarning(Rejected):
    """A Tryton UserWarning: the server wants a person to confirm; `name` is the warning's key."""

    def __init__(self, message: str, *, name: str, field_errors: list[FieldError] | None = None) -> None:
        super().__init__(message, system=SYSTEM, field_errors=field_errors, status_code=None)
        self.name = name


def encode_value(value: Any) -> Any:
    """json.dumps default: Tryton's tagged objects. A float never reaches this (json handles it natively)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            # Tryton stores naive UTC timestamps.
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Tryton")


def decode_object(obj: dict[str, Any]) -> Any:
    tag = obj.get("__class__")
    if tag == "Decimal":
        return Decimal(obj["decimal"])
    if tag == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if tag == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj["hour"],
            obj["minute"],
            obj["second"],
            obj.get("microsecond", 0),
            tzinfo=dt.UTC,  # Tryton keeps timestamps as naive UTC
        )
    if tag == "time":
        return dt.time(obj["hour"], obj["minute"], obj["second"], obj.get("microsecond", 0))
    if tag == "timedelta":
        return dt.timedelta(seconds=float(obj["seconds"]))
    if tag == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, default=encode_value, separators=(",", ":")).encode()


def loads(raw: bytes | str) -> Any:
    # Floats (Float fields such as quantities) come back as Decimal: their JSON text is exact, a float is not.
    return json.loads(raw, object_hook=decode_object, parse_float=Decimal)


def _field_errors(message: str, description: str) -> list[FieldError]:
    errors = []
    for match in _FIELD_IN_MODEL.finditer(message):
        errors.append(
            FieldError(field=f"{match['model']}.{match['field']}", message=message, code="UserError")
        )
    return errors or [
        FieldError(field=None, message=" ".join(filter(None, [message, description])), code="UserError")
    ]


def fault_to_error(method: str, error: Any) -> ConnectorError:
    """Map the `error` member of a JSON-RPC reply onto the taxonomy."""
    kind = error[0] if isinstance(error, list | tuple) and error else None
    args = error[1] if isinstance(error, list | tuple) and len(error) > 1 else None
    if kind == "UserError" and isinstance(args, list | tuple) and args:
        message, description = str(args[0]), str(args[1] or "") if len(args) > 1 else ""
        text = f"{method}: {message}" + (f" ({description})" if description else "")
        # AccessError arrives as UserError too, and Tryton raises it for business rules ("cannot cancel a
        # customer invoice", "cannot add payment lines to a paid invoice") far more than for permissions:
        # either way a person must act and a retry cannot help, so it is Rejected like every UserError.
        return Rejected(
            text, system=SYSTEM, field_errors=_field_errors(message, description), status_code=None
        )
    if kind == "UserWarning" and isinstance(args, list | tuple) and len(args) >= 2:
        name, message = str(args[0]), str(args[1])
        description = str(args[2] or "") if len(args) > 2 else ""
        text = f"{method}: {message}" + (f" ({description})" if description else "")
        return TrytonUserWarning(text, name=name, field_errors=_field_errors(message, description))
    if kind == "ConcurrencyException":
        return Conflict(f"{method}: {args}", system=SYSTEM, status_code=None)
    if kind == "LoginException":
        return AuthFailed(f"{method}: login needs more than a password: {args}", system=SYSTEM)
    # Any other exception is a server fault (a locked SQLite database after trytond's own retries, a bug):
    # the JSON-RPC equivalent of a 500.
    return Unavailable(f"{method}: Tryton server error: {str(kind)[:300]}", system=SYSTEM, status_code=None)


def status_to_error(method: str, response: httpx.Response) -> ConnectorError:
    status = response.status_code
    text = f"{method}: HTTP {status} {response.text[:300]}".strip()
    if status == 401:
        return AuthFailed(f"{text} (session refused after a fresh login)", system=SYSTEM, status_code=status)
    if status == 403:
        return AuthFailed(
            f"{text} (method not exposed over RPC to this user)", system=SYSTEM, status_code=status
        )
    if status == 429:
        return RateLimited(text, system=SYSTEM, retry_after=retry_after_seconds(response))
    if status == 504:
        return Timeout(text, system=SYSTEM)
    if status >= 500:
        return Unavailable(text, system=SYSTEM, status_code=status)
    if status == 404:
        return Unavailable(
            f"{text} (is the database loaded by the server?)", system=SYSTEM, status_code=status
        )
    return Rejected(text, system=SYSTEM, status_code=status)


class TrytonRpc:
    """One Tryton user session on one database; safe to share between concurrent tasks."""

    def __init__(
        self,
        *,
        url: str,
        database: str,
        user: str,
        password: str,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        language: str = "en",
    ) -> None:
        if not database:
            raise ValueError("a Tryton database name is required")
        self._base = url.rstrip("/")
        self.database = database
        self.user = user
        self._password = password
        self._language = language
        self._http = http or build_client(base_url=self._base, timeout=timeout)
        self._owns_http = http is None
        self._ids = itertools.count(1)
        self._session: str | None = None
        self._login_lock = asyncio.Lock()
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}
        self.logins = 0

    @property
    def _db_url(self) -> str:
        return f"{self._base}/{self.database}/rpc/"

    async def _post(
        self, url: str, method: str, params: Sequence[Any], session: str | None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if session:
            headers["Authorization"] = f"Session {session}"
        request = self._http.build_request(
            "POST",
            url,
            content=dumps({"id": next(self._ids), "method": method, "params": list(params)}),
            headers=headers,
        )
        return await send(self._http, request, system=SYSTEM)

    @staticmethod
    def _result(method: str, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise status_to_error(method, response)
        try:
            body = loads(response.content)
        except ValueError as exc:
            raise Unavailable(
                f"{method}: Tryton answered with invalid JSON: {response.text[:200]}", system=SYSTEM
            ) from exc
        if body.get("error"):
            raise fault_to_error(method, body["error"])
        return body.get("result")

    async def login(self) -> None:
        response = await self._post(
            self._db_url, "common.db.login", [self.user, {"password": self._password}, self._language], None
        )
        if response.status_code == 401:
            raise AuthFailed(
                f"Tryton refused the login of {self.user!r} on database {self.database!r}",
                system=SYSTEM,
                status_code=401,
            )
        user_id, key, _bus = self._result("common.db.login", response)
        session = base64.b64encode(f"{self.user}:{user_id}:{key}".encode()).decode("ascii")
        # The clients' own sequence: the preferences are the context (company, companies, language).
        preferences = self._result(
            "model.res.user.get_preferences",
            await self._post(self._db_url, "model.res.user.get_preferences", [True, {}], session),
        )
        self.user_id = int(user_id)
        self._session = session
        self.context = dict(preferences)
        self.logins += 1

    async def _ensure_session(self, stale: str | None) -> str:
        async with self._login_lock:
            if self._session is None or self._session == stale:
                await self.login()
            assert self._session is not None
            return self._session

    async def refresh_context(self) -> None:
        self.context = dict(await self.call("model.res.user.get_preferences", True, context={}, replace=True))

    async def logout(self) -> None:
        """End the session on the server (common.db.logout takes no context)."""
        if self._session is not None:
            response = await self._post(self._db_url, "common.db.logout", [], self._session)
            self._result("common.db.logout", response)

    async def call(
        self, method: str, *args: Any, context: Mapping[str, Any] | None = None, replace: bool = False
    ) -> Any:
        """Call `method` with `args` and the session context (updated with `context`, or replaced by it)."""
        # Log in first: the session's context (company, language) comes with the login.
        session = self._session or await self._ensure_session(None)
        ctx = dict(context or {}) if replace else {**self.context, **(context or {})}
        params = [*args, ctx]
        response = await self._post(self._db_url, method, params, session)
        if response.status_code == 401:
            session = await self._ensure_session(session)
            response = await self._post(self._db_url, method, params, session)
        return self._result(method, response)

    # -- ModelStorage helpers ----------------------------------------------------------------------------

    async def search(
        self,
        model: str,
        domain: Sequence[Any],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        return list(
            await self.call(
                f"model.{model}.search",
                list(domain),
                offset,
                limit,
                [list(o) for o in order] if order else None,
                context=context,
            )
        )

    async def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        return list(await self.call(f"model.{model}.read", list(ids), list(fields), context=context))

    async def search_read(
        self,
        model: str,
        domain: Sequence[Any],
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(
            await self.call(
                f"model.{model}.search_read",
                list(domain),
                offset,
                limit,
                [list(o) for o in order] if order else None,
                list(fields),
                context=context,
            )
        )

    async def create(
        self, model: str, values: Sequence[Mapping[str, Any]], *, context: Mapping[str, Any] | None = None
    ) -> list[int]:
        return list(await self.call(f"model.{model}.create", [dict(v) for v in values], context=context))

    async def write(
        self,
        model: str,
        ids: Sequence[int],
        values: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        await self.call(f"model.{model}.write", list(ids), dict(values), context=context)

    async def delete(
        self, model: str, ids: Sequence[int], *, context: Mapping[str, Any] | None = None
    ) -> None:
        await self.call(f"model.{model}.delete", list(ids), context=context)

    async def button(
        self, model: str, name: str, ids: Sequence[int], *, context: Mapping[str, Any] | None = None
    ) -> Any:
        return await self.call(f"model.{model}.{name}", list(ids), context=context)

    async def ref(self, xml_id: str) -> int:
        """The database id of a module record, e.g. 'product.uom_hour'."""
        return int(await self.call("model.ir.model.data.get_id", xml_id))

    async def acknowledge_warning(self, name: str) -> None:
        """Answer 'yes' to a UserWarning once, as the Tryton clients do before repeating the call."""
        await self.call("model.res.user.warning.skip", name, False)

    # -- Wizards -----------------------------------------------------------------------------------------

    def wizard_session(self, name: str, *, context: Mapping[str, Any] | None = None) -> WizardSession:
        """`async with rpc.wizard_session("account.invoice.pay", context=...) as wizard:` then `execute`."""
        return WizardSession(self, name, context)

    async def wizard(
        self, name: str, steps: Sequence[tuple[str, Any]], *, context: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Run wizard `name` through fixed steps: (state, data or callable(previous result) -> data)."""
        async with self.wizard_session(name, context=context) as wizard:
            result = await wizard.start()
            results = [result]
            for state, data in steps:
                payload = data(result) if callable(data) else (data or {})
                result = await wizard.execute(state, payload)
                results.append(result)
        return results

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def view_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """A wizard view's defaults without the 'field.' rec_name helper keys, ready to send back."""
    view = result.get("view") or {}
    defaults = dict(view.get("defaults") or {})
    defaults.update(view.get("values") or {})
    return {key: value for key, value in defaults.items() if "." not in key}


class WizardSession:
    """One server-side wizard session; deleted on exit even when a step fails."""

    def __init__(self, rpc: TrytonRpc, name: str, context: Mapping[str, Any] | None) -> None:
        self._rpc = rpc
        self.name = name
        self._context = dict(context or {})
        self.session_id: int | None = None
        self.start_state = ""

    async def __aenter__(self) -> WizardSession:
        self.session_id, self.start_state, _end = await self._rpc.call(
            f"wizard.{self.name}.create", context=self._context
        )
        return self

    async def start(self) -> dict[str, Any]:
        return await self.execute(self.start_state, {})

    async def execute(self, state: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Run `state` with the views' values; the reply has the next `view` (with `state`) or `actions`."""
        result = await self._rpc.call(
            f"wizard.{self.name}.execute", self.session_id, dict(data), state, context=self._context
        )
        return dict(result or {})

    async def __aexit__(self, *exc_info: object) -> None:
        if self.session_id is not None:
            await self._rpc.call(f"wizard.{self.name}.delete", self.session_id, context=self._context)


def next_view_state(result: Mapping[str, Any]) -> str | None:
    """The state of the view a wizard step answered with, or None when the wizard ended."""
    view = result.get("view")
    return str(view["state"]) if view and view.get("state") else None
