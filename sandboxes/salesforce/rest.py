"""The REST API under /services/data/: sObject rows, upsert by external id, SOQL query, composite.

Routing is plain Python so that /composite can run its subrequests through exactly the same code as
top-level requests.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandboxes.salesforce import ids, soql
from sandboxes.salesforce.errors import SfError, json_parser_error, malformed_query, not_found
from sandboxes.salesforce.org import Org, record_url
from sandboxes.salesforce.schema import SObjectType

RELEASES = {
    "62.0": "Winter '25",
    "61.0": "Summer '24",
    "60.0": "Spring '24",
    "59.0": "Winter '24",
    "58.0": "Summer '23",
    "57.0": "Spring '23",
    "56.0": "Winter '23",
    "55.0": "Summer '22",
    "54.0": "Spring '22",
    "53.0": "Winter '22",
    "52.0": "Summer '21",
    "51.0": "Spring '21",
    "50.0": "Winter '21",
    "49.0": "Summer '20",
    "48.0": "Spring '20",
    "47.0": "Winter '20",
    "46.0": "Summer '19",
    "45.0": "Spring '19",
    "44.0": "Winter '19",
}
MAX_COMPOSITE_SUBREQUESTS = 25
MAX_COLLECTION_RECORDS = 200
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_HALTED_ROLLBACK = "The transaction was rolled back since another operation in the same transaction failed."


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Locator:
    query: soql.Query
    record_ids: list[str]
    version: str
    batch_size: int


class RestApi:
    def __init__(
        self,
        org: Org,
        *,
        latest_version: str = "62.0",
        limits: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.org = org
        self.latest_version = latest_version
        self._limits = limits or (lambda: {})
        self._locators: OrderedDict[str, _Locator] = OrderedDict()
        self._locator_seq = 0

    # ----- entry points ---------------------------------------------------------------------------

    def versions(self, base: str = "") -> list[dict[str, str]]:
        return [
            {"label": label, "url": f"/services/data/v{version}", "version": version}
            for version, label in sorted(RELEASES.items(), key=lambda item: float(item[0]))
            if float(version) <= float(self.latest_version)
        ]

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: Any
    ) -> Reply:
        """`path` is what follows /services/data/, e.g. 'v62.0/sobjects/Account'."""
        try:
            return self._dispatch(method.upper(), path, query, headers, body)
        except SfError as error:
            return Reply(error.status, error.body(), dict(error.headers))

    # ----- routing --------------------------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: Any
    ) -> Reply:
        parts = [unquote(part) for part in path.strip("/").split("/")]
        version = parts[0]
        if (
            not re.fullmatch(r"v\d+\.\d", version)
            or version[1:] not in RELEASES
            or float(version[1:]) > float(self.latest_version)
        ):
            raise not_found()
        rest = parts[1:]
        if not rest:
            _allow(method, "GET")
            return Reply(200, self._resources(version))
        head = rest[0]
        if head == "limits" and len(rest) == 1:
            _allow(method, "GET")
            return Reply(200, self._limits())
        if head == "sobjects":
            return self._sobjects(method, version, rest[1:], query, body)
        if head == "query":
            _allow(method, "GET")
            if len(rest) == 1:
                return self._query(version, query.get("q"), headers)
            if len(rest) == 2:
                return self._query_more(rest[1])
        if head == "composite":
            if len(rest) == 1:
                _allow(method, "POST")
                return self._composite(version, body)
            if rest[1:] == ["sobjects"]:
                _allow(method, "POST", "PATCH")
                return self._collection(version, method, body)
        raise not_found()

    def _resources(self, version: str) -> dict[str, str]:
        base = f"/services/data/{version}"
        return {name: f"{base}/{name}" for name in ("sobjects", "query", "composite", "limits")}

    def _sobjects(
        self, method: str, version: str, rest: list[str], query: Mapping[str, str], body: Any
    ) -> Reply:
        if not rest:
            _allow(method, "GET")
            return Reply(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": MAX_COLLECTION_RECORDS,
                    "sobjects": [self._summary(s, version) for s in self.org.schema.values()],
                },
            )
        sobject = self.org.sobject(rest[0])
        if len(rest) == 1:
            _allow(method, "GET", "POST")
            if method == "GET":
                return Reply(200, {"objectDescribe": self._summary(sobject, version), "recentItems": []})
            return self._create(sobject, version, body)
        if len(rest) == 2 and rest[1] == "describe":
            _allow(method, "GET")
            return Reply(200, self._describe(sobject, version))
        if len(rest) == 2:
            record_id = ids.to_18(rest[1])
            if record_id is None:
                raise not_found(f"Provided external ID field does not exist or is not accessible: {rest[1]}")
            record_id = self.org.parse_id(sobject, rest[1])
            _allow(method, "GET", "PATCH", "DELETE")
            if method == "GET":
                return Reply(200, self._read(sobject, record_id, version, query.get("fields")))
            if method == "PATCH":
                with self.org.transaction():
                    self.org.update(sobject, record_id, body)
                return Reply(204)
            with self.org.transaction():
                self.org.delete(sobject, record_id)
            return Reply(204)
        if len(rest) == 3:
            field_name, value = rest[1], rest[2]
            _allow(method, "GET", "PATCH", "DELETE")
            matches = self.org.find_by_external_id(sobject, field_name, value)
            if method == "PATCH":
                return self._upsert(sobject, version, field_name, value, matches, query, body)
            if len(matches) > 1:
                return Reply(300, [record_url(version, sobject.name, doc["Id"]) for doc in matches])
            if not matches:
                raise not_found()
            if method == "GET":
                return Reply(200, self._read(sobject, matches[0]["Id"], version, query.get("fields")))
            with self.org.transaction():
                self.org.delete(sobject, matches[0]["Id"])
            return Reply(204)
        raise not_found()

    # ----- sObject rows ---------------------------------------------------------------------------

    def _create(self, sobject: SObjectType, version: str, body: Any) -> Reply:
        with self.org.transaction():
            record_id = self.org.create(sobject, body)
        return Reply(
            201,
            {"id": record_id, "success": True, "errors": []},
            {"Location": record_url(version, sobject.name, record_id)},
        )

    def _read(self, sobject: SObjectType, record_id: str, version: str, fields: str | None) -> dict[str, Any]:
        doc = self.org.get(sobject.name, record_id)
        if doc is None:
            raise not_found()
        wanted: list[str] | None = None
        if fields:
            wanted = []
            for name in (part.strip() for part in fields.split(",") if part.strip()):
                definition = sobject.field(name)
                if definition is None:
                    raise SfError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name}' on entity '{sobject.name}'. If "
                        "you are attempting to use a custom field, be sure to append the '__c' after the "
                        "custom field name.",
                    )
                wanted.append(definition.name)
        return self.org.render(sobject, doc, version, wanted)

    def _upsert(
        self,
        sobject: SObjectType,
        version: str,
        field_name: str,
        value: str,
        matches: list[dict[str, Any]],
        query: Mapping[str, str],
        body: Any,
    ) -> Reply:
        external = sobject.field(field_name)
        assert external is not None  # find_by_external_id has checked the field
        if isinstance(body, dict):
            named = [key for key in body if key.lower() in ("id", external.name.lower())]
            if named:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"Do not specify {', '.join(named)} in the request body of an upsert by "
                    f"{external.name}: the URL names the record",
                    named,
                )
        if len(matches) > 1:
            return Reply(300, [record_url(version, sobject.name, doc["Id"]) for doc in matches])
        reports_created = _version(version) >= 46.0
        if matches:
            record_id = matches[0]["Id"]
            with self.org.transaction():
                self.org.update(sobject, record_id, body)
            if not reports_created:
                return Reply(204)
            return Reply(200, {"id": record_id, "success": True, "errors": [], "created": False})
        update_only = str(query.get("updateOnly", "")).lower() == "true" and _version(version) >= 61.0
        if update_only or external.name == "Id":
            raise not_found()
        with self.org.transaction():
            record_id = self.org.create(
                sobject, {**body, external.name: value} if isinstance(body, dict) else body
            )
        result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
        if reports_created:
            result["created"] = True
        return Reply(201, result, {"Location": record_url(version, sobject.name, record_id)})

    # ----- SOQL -----------------------------------------------------------------------------------

    def _query(self, version: str, text: str | None, headers: Mapping[str, str]) -> Reply:
        if not text:
            raise malformed_query("A query string must be provided in the 'q' parameter")
        parsed = soql.parse(self.org, text)
        record_ids = soql.matching_ids(self.org, parsed)
        if parsed.count_only:
            return Reply(200, {"totalSize": len(record_ids), "done": True, "records": []})
        batch_size = _batch_size(headers)
        return Reply(200, self._page(_Locator(parsed, record_ids, version, batch_size), 0))

    def _query_more(self, locator_text: str) -> Reply:
        locator_id, _, offset_text = locator_text.partition("-")
        locator = self._locators.get(locator_id)
        if locator is None or not offset_text.isdigit() or int(offset_text) > len(locator.record_ids):
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return Reply(200, self._page(locator, int(offset_text)))

    def _page(self, locator: _Locator, offset: int) -> dict[str, Any]:
        chunk = locator.record_ids[offset : offset + locator.batch_size]
        records = []
        for record_id in chunk:
            doc = self.org.get(locator.query.sobject.name, record_id)
            if doc is not None:
                records.append(soql.render_row(self.org, locator.query, doc, locator.version))
        page: dict[str, Any] = {"totalSize": len(locator.record_ids), "done": True, "records": records}
        end = offset + len(chunk)
        if end < len(locator.record_ids):
            locator_id = self._remember(locator)
            page["done"] = False
            page["nextRecordsUrl"] = f"/services/data/{locator.version}/query/{locator_id}-{end}"
        return page

    def _remember(self, locator: _Locator) -> str:
        for locator_id, known in self._locators.items():
            if known is locator:
                return locator_id
        self._locator_seq += 1
        locator_id = ids.make_id("QueryLocator", self._locator_seq)[:15]
        self._locators[locator_id] = locator
        # Salesforce keeps a limited number of open cursors per user; the oldest are closed first.
        while len(self._locators) > 1000:
            self._locators.popitem(last=False)
        return locator_id

    # ----- composite ------------------------------------------------------------------------------

    def _composite(self, version: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
            raise json_parser_error("The request body must be an object with a 'compositeRequest' array")
        subrequests = body["compositeRequest"]
        if not 1 <= len(subrequests) <= MAX_COMPOSITE_SUBREQUESTS:
            raise SfError(
                400,
                "INVALID_INPUT",
                f"A composite request takes 1 to {MAX_COMPOSITE_SUBREQUESTS} "
                f"subrequests, got {len(subrequests)}",
            )
        seen: set[str] = set()
        for index, sub in enumerate(subrequests):
            if not isinstance(sub, dict):
                raise json_parser_error(f"compositeRequest[{index}] must be an object")
            for required in ("method", "url", "referenceId"):
                if not isinstance(sub.get(required), str) or not sub[required]:
                    raise json_parser_error(
                        f"compositeRequest[{index}] is missing required property '{required}'"
                    )
            if sub["method"] not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
                raise SfError(
                    400,
                    "INVALID_INPUT",
                    f"compositeRequest[{index}] has unsupported method '{sub['method']}'",
                )
            if not _REFERENCE_ID.match(sub["referenceId"]):
                raise SfError(
                    400,
                    "INVALID_INPUT",
                    f"Invalid referenceId '{sub['referenceId']}': use letters, digits and underscores",
                )
            if sub["referenceId"] in seen:
                raise SfError(
                    400,
                    "INVALID_INPUT",
                    f"Duplicate referenceId provided in the request: {sub['referenceId']}",
                )
            seen.add(sub["referenceId"])
            if not sub["url"].startswith("/services/data/v"):
                raise SfError(
                    400,
                    "INVALID_INPUT",
                    f"compositeRequest[{index}].url must start with /services/data/vXX.X/",
                )
        all_or_none = bool(body.get("allOrNone", False))
        responses: list[dict[str, Any]] = []
        results: dict[str, Reply] = {}
        if all_or_none:
            with self.org.transaction() as tx:
                for sub in subrequests:
                    reply = self._subrequest(sub, results)
                    results[sub["referenceId"]] = reply
                    responses.append(_sub_response(sub["referenceId"], reply))
                    if reply.status >= 400:
                        tx.failed = True
                        break
            if tx.failed:
                # Everything else is reported halted: earlier work was rolled back, later work never ran.
                halted = Reply(400, [{"errorCode": "PROCESSING_HALTED", "message": _HALTED_ROLLBACK}])
                failed_at = len(responses) - 1
                responses = [
                    responses[index] if index == failed_at else _sub_response(sub["referenceId"], halted)
                    for index, sub in enumerate(subrequests)
                ]
        else:
            for sub in subrequests:
                reply = self._subrequest(sub, results)
                results[sub["referenceId"]] = reply
                responses.append(_sub_response(sub["referenceId"], reply))
        return Reply(200, {"compositeResponse": responses})

    def _subrequest(self, sub: dict[str, Any], results: dict[str, Reply]) -> Reply:
        try:
            url = _resolve(sub["url"], results, in_url=True)
            body = _resolve(sub.get("body"), results, in_url=False)
        except SfError as error:
            return Reply(error.status, error.body())
        split = urlsplit(url)
        path = split.path[len("/services/data/") :]
        if path.split("/")[1:2] == ["composite"]:
            return Reply(
                400,
                [
                    {
                        "errorCode": "INVALID_INPUT",
                        "message": "A composite subrequest can't call the composite resources",
                    }
                ],
            )
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {str(k).lower(): str(v) for k, v in (sub.get("httpHeaders") or {}).items()}
        return self.handle(sub["method"], path, query, headers, body)

    # ----- sObject collections --------------------------------------------------------------------

    def _collection(self, version: str, method: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise json_parser_error("The request body must be an object with a 'records' array")
        records = body["records"]
        if len(records) > MAX_COLLECTION_RECORDS:
            raise SfError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than "
                f"{MAX_COLLECTION_RECORDS} records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, Any]] = []

        def run_one(record: Any) -> dict[str, Any]:
            try:
                if (
                    not isinstance(record, dict)
                    or not isinstance(record.get("attributes"), dict)
                    or not record["attributes"].get("type")
                ):
                    raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
                sobject = self.org.sobject(record["attributes"]["type"])
                fields = {key: value for key, value in record.items() if key not in ("attributes", "Id")}
                if method == "POST":
                    if "Id" in record:
                        raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                    with self.org.transaction():
                        record_id = self.org.create(sobject, fields)
                else:
                    if not isinstance(record.get("Id"), str):
                        raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
                    record_id = self.org.parse_id(sobject, record["Id"])
                    with self.org.transaction():
                        self.org.update(sobject, record_id, fields)
                return {"id": record_id, "success": True, "errors": []}
            except SfError as error:
                return {
                    "success": False,
                    "errors": [
                        {
                            "statusCode": error.error_code,
                            "message": error.message,
                            "fields": error.fields or [],
                        }
                    ],
                }

        if all_or_none:
            with self.org.transaction() as tx:
                results = [run_one(record) for record in records]
                tx.failed = any(not result["success"] for result in results)
            if tx.failed:
                rolled_back = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request "
                    "was using AllOrNone header",
                    "fields": [],
                }
                results = [
                    result
                    if not result["success"]
                    else {"id": None, "success": False, "errors": [rolled_back]}
                    for result in results
                ]
        else:
            results = [run_one(record) for record in records]
        return Reply(200, results)

    # ----- describe -------------------------------------------------------------------------------

    def _summary(self, sobject: SObjectType, version: str) -> dict[str, Any]:
        return {
            "name": sobject.name,
            "label": sobject.label,
            "keyPrefix": ids.KEY_PREFIXES[sobject.name],
            "custom": False,
            "createable": sobject.name != "User",
            "queryable": True,
            "urls": {
                "sobject": f"/services/data/{version}/sobjects/{sobject.name}",
                "describe": f"/services/data/{version}/sobjects/{sobject.name}/describe",
                "rowTemplate": f"/services/data/{version}/sobjects/{sobject.name}/{{ID}}",
            },
        }

    def _describe(self, sobject: SObjectType, version: str) -> dict[str, Any]:
        fields = []
        for item in sobject.fields.values():
            fields.append(
                {
                    "name": item.name,
                    "label": item.label,
                    "type": item.type,
                    "length": item.length,
                    "precision": item.precision if item.type in ("currency", "percent") else 0,
                    "scale": item.scale if item.type in ("currency", "percent") else 0,
                    "digits": item.precision if item.type == "int" else 0,
                    "nillable": not item.required,
                    "createable": item.createable,
                    "updateable": item.updateable,
                    "externalId": item.external_id,
                    "unique": item.unique,
                    "custom": item.name.endswith("__c"),
                    "referenceTo": list(item.reference_to),
                    "relationshipName": item.relationship_name,
                    "restrictedPicklist": item.restricted,
                    "picklistValues": [
                        {
                            "value": value,
                            "label": value,
                            "active": True,
                            "defaultValue": value == item.default,
                        }
                        for value in item.values
                    ],
                }
            )
        return {**self._summary(sobject, version), "fields": fields}


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise SfError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}"
        )


def _version(version: str) -> float:
    return float(version[1:])


def _batch_size(headers: Mapping[str, str]) -> int:
    options = headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
    if not match:
        return DEFAULT_BATCH_SIZE
    # Salesforce treats the batch size as a hint between 200 and 2,000.
    return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(match.group(1))))


def _sub_response(reference_id: str, reply: Reply) -> dict[str, Any]:
    return {
        "body": reply.body,
        "httpHeaders": reply.headers,
        "httpStatusCode": reply.status,
        "referenceId": reference_id,
    }


def _lookup(reference_id: str, path: str, results: dict[str, Reply]) -> Any:
    reply = results.get(reference_id)
    expression = f"{reference_id}{path}"
    if reply is None:
        raise SfError(
            400,
            "PROCESSING_HALTED",
            f"Invalid reference specification. Reference ID '{reference_id}' "
            "doesn't refer to an earlier subrequest.",
        )
    if reply.status >= 400:
        raise SfError(
            400,
            "PROCESSING_HALTED",
            f"Invalid reference specification. The subrequest "
            f"'{reference_id}' failed, so {expression} has no value.",
        )
    value: Any = reply.body
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = step
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise SfError(
                400,
                "PROCESSING_HALTED",
                f"Invalid reference specification. No value for {expression} found in {reference_id}.",
            )
    return value


def _resolve(value: Any, results: dict[str, Reply], *, in_url: bool) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole and not in_url:
            return _lookup(whole.group(1), whole.group(2), results)
        return _REFERENCE.sub(lambda match: str(_lookup(match.group(1), match.group(2), results)), value)
    if isinstance(value, dict):
        return {key: _resolve(item, results, in_url=in_url) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, results, in_url=in_url) for item in value]
    return value
