"""`GET /api/v1/subscribed_events`: Kantata's pull change feed (it has no push webhooks).

Filters `created_after`, `created_before`, `event_types`, `subject_type` (+ `subject_id`), `user_ids`,
`only`; default order `created_at:desc`; payloads only through `optional_fields`; up to 9 days retained
(https://developer.kantata.com/kantata/specification/events/get-subscribed-events). Duplicate and
out-of-order delivery come from the run's FaultPlan, on top of the seeded generation lag.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.faults import FaultPlan
from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.errors import bad_request
from sandboxes.kantata.events import PAYLOAD_FIELDS
from sandboxes.kantata.query import Query
from sandboxes.kantata.state import COLLECTION_OF_SUBJECT, public

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

EVENT_TYPES = (
    "workspace:created",
    "workspace:updated",
    "workspace:deleted",
    "workspace:custom_field_value_created",
    "workspace:custom_field_value_updated",
    "workspace:custom_field_value_deleted",
    "story:created",
    "story:updated",
    "story:deleted",
    "participation:created",
    "participation:updated",
    "participation:deleted",
    "time_entry:created",
    "time_entry:updated",
    "time_entry:deleted",
    "timesheet:created",
    "timesheet:time_entry_added",
    "timesheet:updated",
    "expense:created",
    "expense:updated",
    "expense:deleted",
    "invoice:created",
    "invoice:updated",
    "invoice:deleted",
    "user:created",
    "user:updated",
    "role:created",
    "role:updated",
)


@router.get("/subscribed_events/event_types")
async def event_types() -> JSONResponse:
    return JSONResponse(
        {
            "subscribed_event_types": list(EVENT_TYPES),
            "subscribed_event_type_schemas": {
                name: {
                    "name": name,
                    "description": f"A {name.split(':')[0].replace('_', ' ')} was "
                    f"{name.split(':')[1].replace('_', ' ')}.",
                    "fields": {},
                }
                for name in EVENT_TYPES
            },
        }
    )


@router.get("/subscribed_events")
async def subscribed_events(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(["subject"])
    window = query.window()
    _, descending = query.order(["created_at:asc", "created_at:desc"], "created_at:desc")
    optional = set(query.many("optional_fields"))
    unknown = optional - set(PAYLOAD_FIELDS)
    if unknown:
        raise bad_request(f"Unknown optional_fields: {', '.join(sorted(unknown))}")
    types = query.ids("event_types")
    subject_type = query.text("subject_type")
    subject_ids = query.ids("subject_id")
    if subject_ids is not None and subject_type is None:
        raise bad_request("subject_id requires subject_type")
    if query.flag("most_recent") and query.flag("most_recent_by_event_type"):
        raise bad_request("most_recent cannot be combined with most_recent_by_event_type")
    user_ids, only = query.ids("user_ids"), query.ids("only")
    ids = state.events.select(
        created_after=query.timestamp("created_after"),
        created_before=query.timestamp("created_before"),
        event_types=None if types is None else set(types),
        subject_type=subject_type,
        subject_ids=None if subject_ids is None else set(subject_ids),
        user_ids=None if user_ids is None else set(user_ids),
        only=None if only is None else set(only),
        descending=descending,
    )
    chosen = ids[window.offset : window.offset + window.size]
    plan: FaultPlan = request.app.state.plan
    # A flaky feed delivers some events twice and shuffles a page, as the run's FaultPlan decides.
    delivered = plan.deliveries(chosen)
    body: dict[str, object] = {
        "count": len(ids),
        "meta": {
            "count": len(ids),
            "page_count": -(-len(ids) // window.size) if ids else 0,
            "page_number": window.page_number,
            "page_size": window.size,
        },
        "results": [{"key": "subscribed_events", "id": event_id} for event_id in delivered],
    }
    events = {}
    for event_id in chosen:
        doc = state.events.public(event_id, optional)
        if "subject" in names:
            key = COLLECTION_OF_SUBJECT.get(doc["subject_type"])
            subject = state.get(key, doc["subject_id"]) if key else None
            doc["subject_ref"] = None if subject is None else {"key": key, "id": subject["id"]}
            if subject is not None and key is not None:
                body.setdefault(key, {})[subject["id"]] = public(subject)  # type: ignore[index]
        events[event_id] = doc
    body["subscribed_events"] = events
    return JSONResponse(body)
