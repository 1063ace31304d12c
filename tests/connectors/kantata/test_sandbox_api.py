"""The sandbox speaks Kantata: envelope, paging, includes, filters, errors, OAuth, rate limits, the feed.

These go over raw HTTP, as any Kantata client would, so they pin the vendor behaviour the connector relies on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandboxes.kantata.seed import KantataSeeder, TimeLog

from .conftest import People, Sandbox


async def _workspace(api: httpx.AsyncClient, **attributes: Any) -> str:
    body = {"workspace": {"title": f"API project {uuid.uuid4().hex[:8]}", "budgeted": False, **attributes}}
    response = await api.post("/workspaces", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["results"][0]["id"])


async def _entries(
    api: httpx.AsyncClient, workspace_id: str, count: int, day: str = "2024-05-02"
) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 100):
        batch = [
            {"workspace_id": int(workspace_id), "date_performed": day, "time_in_minutes": 30}
            for _ in range(min(100, count - start))
        ]
        response = await api.post("/time_entries", json={"time_entries": batch})
        assert response.status_code == 200, response.text
        ids.extend(ref["id"] for ref in response.json()["results"])
    return ids


# --- OAuth ------------------------------------------------------------------------------------------------


async def test_a_call_without_a_valid_token_gets_kantatas_oauth_error(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as raw:
        response = await raw.get("/api/v1/workspaces", headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 401
    assert response.json() == {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}
    assert 'realm="Doorkeeper"' in response.headers["www-authenticate"]


async def test_the_token_endpoint_refuses_an_unknown_client_in_doorkeepers_shape(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as raw:
        response = await raw.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "who", "client_secret": "nope"},
        )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_refresh_token_buys_one_new_access_token(sandbox: Sandbox) -> None:
    credentials = {"client_id": sandbox.config.client_id, "client_secret": sandbox.config.client_secret}
    async with httpx.AsyncClient(base_url=sandbox.url) as raw:
        first = (
            await raw.post("/oauth/token", data={"grant_type": "client_credentials", **credentials})
        ).json()
        refreshed = await raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], **credentials},
        )
        replayed = await raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], **credentials},
        )
        usable = await raw.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        )

    assert refreshed.status_code == 200 and refreshed.json()["token_type"] == "Bearer"
    assert refreshed.json()["access_token"] != first["access_token"]
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert usable.status_code == 200


# --- envelope, paging, includes ---------------------------------------------------------------------------


async def test_lists_carry_count_meta_and_ordered_results_into_id_keyed_collections(
    api: httpx.AsyncClient,
) -> None:
    workspace_id = await _workspace(api)
    ids = await _entries(api, workspace_id, 3)

    body = (
        await api.get("/time_entries", params={"workspace_id": workspace_id, "order": "created_at:asc"})
    ).json()

    assert body["count"] == 3
    assert body["meta"] == {"count": 3, "page_count": 1, "page_number": 1, "page_size": 20}
    assert body["results"] == [{"key": "time_entries", "id": entry_id} for entry_id in ids]
    assert set(body["time_entries"]) == set(ids)


async def test_per_page_above_200_is_clamped_to_200(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)
    await _entries(api, workspace_id, 205)

    body = (await api.get("/time_entries", params={"workspace_id": workspace_id, "per_page": 500})).json()
    last = (
        await api.get("/time_entries", params={"workspace_id": workspace_id, "per_page": 500, "page": 2})
    ).json()

    assert body["meta"] == {"count": 205, "page_count": 2, "page_number": 1, "page_size": 200}
    assert len(body["results"]) == 200
    assert len(last["results"]) == 5
    assert not {r["id"] for r in body["results"]} & {r["id"] for r in last["results"]}


async def test_include_side_loads_associations_into_their_own_collections(
    api: httpx.AsyncClient, seeder: KantataSeeder, people: People
) -> None:
    workspace_id = await _workspace(api)
    await seeder.add_to_project(workspace_id, [people.consultant])
    [entry_id] = await seeder.log_time(
        workspace_id, [TimeLog(people.consultant.user_id, date(2024, 5, 2), 60)]
    )

    plain = (await api.get(f"/time_entries/{entry_id}")).json()
    body = (await api.get(f"/time_entries/{entry_id}", params={"include": "user,role,workspace"})).json()

    entry = body["time_entries"][entry_id]
    assert "role_id" not in plain["time_entries"][entry_id], "association ids only appear when included"
    assert body["roles"][entry["role_id"]]["name"] == "Consultant"
    assert body["users"][entry["user_id"]]["full_name"] == people.consultant.full_name
    assert entry["workspace_id"] in body["workspaces"]
    assert body["results"] == [{"key": "time_entries", "id": entry_id}]


async def test_an_unknown_include_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/time_entries", params={"include": "horoscope"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "system"


async def test_only_returns_the_named_records_and_skips_missing_ones(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)
    first, _ = await _entries(api, workspace_id, 2)

    body = (await api.get("/time_entries", params={"only": f"{first},999999999"})).json()

    assert [ref["id"] for ref in body["results"]] == [first]


async def test_paths_with_a_json_suffix_are_served_too(api: httpx.AsyncClient) -> None:
    response = await api.get("/users/me.json")

    assert response.status_code == 200
    assert response.json()["results"][0]["key"] == "users"


# --- filters and validation -------------------------------------------------------------------------------


async def test_time_filters_select_by_project_dates_approval_and_billing(
    api: httpx.AsyncClient, seeder: KantataSeeder, people: People
) -> None:
    workspace_id = await _workspace(api, require_time_approvals=True)
    await seeder.add_to_project(workspace_id, [people.consultant])
    user = people.consultant.user_id
    may, june, unbilled = await seeder.log_time(
        workspace_id,
        [
            TimeLog(user, date(2024, 5, 31), 60),
            TimeLog(user, date(2024, 6, 1), 60),
            TimeLog(user, date(2024, 5, 2), 60, billable=False),
        ],
    )
    await seeder.submit_and_approve(workspace_id, [may, june])

    async def ids(**params: str) -> list[str]:
        body = (
            await api.get(
                "/time_entries", params={"workspace_id": workspace_id, "order": "created_at:asc", **params}
            )
        ).json()
        return [ref["id"] for ref in body["results"]]

    assert await ids(date_performed_between="2024-05-01:2024-05-31") == [may, unbilled]
    # Kantata processes `approved` as true whatever value is given.
    assert await ids(approved="false") == [may, june]
    assert await ids(billable="false") == [unbilled]
    assert await ids(uninvoiced="true", date_performed_between=":2024-05-31") == [may, unbilled]


async def test_bulk_create_accepts_at_most_100_objects(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)
    batch = [{"workspace_id": int(workspace_id), "date_performed": "2024-05-02", "time_in_minutes": 5}] * 101

    response = await api.post("/time_entries", json={"time_entries": batch})

    assert response.status_code == 400
    assert "up to 100" in response.json()["errors"][0]["message"]


async def test_validation_errors_name_the_field(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)

    response = await api.post(
        "/time_entries", json={"time_entry": {"workspace_id": int(workspace_id), "time_in_minutes": 30}}
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"type": "validation", "message": "date_performed is required", "field": "date_performed"}
    ]


async def test_a_budget_keeps_every_cent_and_refuses_fractions_of_one(api: httpx.AsyncClient) -> None:
    exact = await api.post(
        "/workspaces", content=b'{"workspace":{"title":"Exact","price":1234567.89,"currency":"GBP"}}'
    )
    too_fine = await api.post(
        "/workspaces", content=b'{"workspace":{"title":"Fine","price":10.005,"currency":"GBP"}}'
    )

    assert exact.json()["workspaces"][exact.json()["results"][0]["id"]]["price_in_cents"] == 123456789
    assert too_fine.status_code == 422 and too_fine.json()["errors"][0]["field"] == "price"


async def test_an_archived_project_is_hidden_unless_asked_for(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)
    await api.put(f"/workspaces/{workspace_id}", json={"workspace": {"archived": True}})

    hidden = await api.get(f"/workspaces/{workspace_id}")
    shown = await api.get(f"/workspaces/{workspace_id}", params={"include_archived": "true"})
    listed = (await api.get("/workspaces", params={"only": workspace_id})).json()

    assert hidden.status_code == 404
    assert hidden.json()["errors"][0]["type"] == "system"
    assert shown.status_code == 200
    assert listed["count"] == 0


async def test_work_can_be_invoiced_only_once(api: httpx.AsyncClient) -> None:
    workspace_id = await _workspace(api)
    entries = await _entries(api, workspace_id, 2)
    invoice = {
        "invoice": {"workspace_id": int(workspace_id), "time_entry_ids": entries, "payment_schedule": 30}
    }

    first = await api.post("/invoices", json=invoice)
    second = await api.post("/invoices", json=invoice)

    assert first.status_code == 200
    assert second.status_code == 422
    assert [error["field"] for error in second.json()["errors"]] == ["time_entry_ids[0]", "time_entry_ids[1]"]


# --- rate limits and faults -------------------------------------------------------------------------------


async def test_over_the_rate_limit_kantata_answers_429_without_retry_after(
    sandbox: Sandbox, api: httpx.AsyncClient
) -> None:
    sandbox.app.state.rate_limits.general_per_minute = 3
    statuses = [(await api.get("/users/me")) for _ in range(4)]

    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert "retry-after" not in statuses[-1].headers
    assert statuses[-1].json()["errors"][0]["type"] == "system"
    assert sandbox.app.state.stats.rate_limited >= 1


async def test_workspace_endpoints_have_their_own_limit(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    sandbox.app.state.rate_limits.endpoint_per_minute = 1

    first = await api.get("/workspaces")
    limited = await api.get("/workspaces")
    other = await api.get("/users/me")

    assert (first.status_code, limited.status_code, other.status_code) == (200, 429, 200)


async def test_injected_server_errors_come_in_kantatas_error_shape(
    sandbox: Sandbox, api: httpx.AsyncClient
) -> None:
    sandbox.faults(seed=3, server_error_rate=1.0)

    response = await api.get("/users/me")

    assert response.status_code == 503
    assert response.json() == {"errors": [{"type": "system", "message": "Service is unavailable"}]}
    assert sandbox.app.state.plan.injected["server_error"] >= 1


# --- subscribed events ------------------------------------------------------------------------------------


async def test_events_come_newest_first_by_default_and_created_after_is_strict(
    api: httpx.AsyncClient,
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    workspace_id = await _workspace(api)
    entries = await _entries(api, workspace_id, 3)
    params = {
        "created_after": since,
        "subject_type": "TimeEntry",
        "subject_id": ",".join(entries),
        "event_types": "time_entry:created",
    }

    newest_first = (await api.get("/subscribed_events", params=params)).json()
    oldest_first = (await api.get("/subscribed_events", params={**params, "order": "created_at:asc"})).json()
    last = oldest_first["subscribed_events"][oldest_first["results"][-1]["id"]]
    after_last = (
        await api.get("/subscribed_events", params={**params, "created_after": last["created_at"]})
    ).json()

    subjects = [
        str(oldest_first["subscribed_events"][ref["id"]]["subject_id"]) for ref in oldest_first["results"]
    ]
    assert subjects == entries
    assert [ref["id"] for ref in newest_first["results"]] == [
        ref["id"] for ref in reversed(oldest_first["results"])
    ]
    assert after_last["count"] == 0, "created_after excludes events stamped at that very instant"


async def test_event_payloads_come_only_when_asked_for(api: httpx.AsyncClient) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    workspace_id = await _workspace(api)
    [entry] = await _entries(api, workspace_id, 1)
    params = {"created_after": since, "subject_type": "TimeEntry", "subject_id": entry}

    bare = (await api.get("/subscribed_events", params=params)).json()
    full = (
        await api.get("/subscribed_events", params={**params, "optional_fields": "current_payload"})
    ).json()

    [bare_event] = bare["subscribed_events"].values()
    [full_event] = full["subscribed_events"].values()
    assert "current_payload" not in bare_event
    assert full_event["current_payload"]["id"] == entry
    assert full_event["event_type"] == "time_entry:created"
    assert full_event["subject_type"] == "TimeEntry"


async def test_a_seeded_flaky_feed_duplicates_and_shuffles_the_same_way_every_run(
    sandbox: Sandbox, api: httpx.AsyncClient
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    workspace_id = await _workspace(api)
    entries = await _entries(api, workspace_id, 8)
    params = {
        "created_after": since,
        "event_types": "time_entry:created",
        "order": "created_at:asc",
        "subject_type": "TimeEntry",
        "subject_id": ",".join(entries),
    }
    clean = [ref["id"] for ref in (await api.get("/subscribed_events", params=params)).json()["results"]]

    runs = []
    for _ in range(2):
        sandbox.faults(seed=11, duplicate_event_rate=0.5, reorder_events=True)
        runs.append(
            [ref["id"] for ref in (await api.get("/subscribed_events", params=params)).json()["results"]]
        )

    assert runs[0] == runs[1], "the same seed replays the same delivery"
    assert sorted(set(runs[0])) == sorted(clean)
    assert len(runs[0]) > len(clean), "some events were delivered twice"
    assert runs[0] != sorted(runs[0], key=clean.index), "the page was delivered out of order"


@pytest.mark.parametrize("bad", ["yesterday", "2024-05-14T10:00:00"])
async def test_created_after_must_be_an_iso_8601_instant_with_offset(
    api: httpx.AsyncClient, bad: str
) -> None:
    response = await api.get("/subscribed_events", params={"created_after": bad})

    assert response.status_code == 400


async def test_a_rejected_timesheet_leaves_time_unapproved_and_free_to_resubmit(
    api: httpx.AsyncClient, seeder: KantataSeeder, people: People
) -> None:
    workspace_id = await _workspace(api, require_time_approvals=True)
    await seeder.add_to_project(workspace_id, [people.consultant])
    entries = await seeder.log_time(
        workspace_id, [TimeLog(people.consultant.user_id, date(2024, 5, 8), 60)] * 2
    )
    first = await seeder.submit_timesheet(workspace_id, entries, "Week 19")

    rejected = await api.put(
        f"/timesheet_submissions/{first}/reject", json={"resolution": {"description": "fix"}}
    )
    approve_rejected = await api.put(f"/timesheet_submissions/{first}/approve", json={})
    second = await seeder.submit_timesheet(workspace_id, entries, "Week 19 again")
    await seeder.approve_timesheet(second)
    listed = (
        await api.get(
            "/time_entries",
            params={"workspace_id": workspace_id, "approved": "true", "include": "recent_submission"},
        )
    ).json()

    assert rejected.json()["timesheet_submissions"][first]["status"] == "rejected"
    assert approve_rejected.status_code == 422
    assert sorted(ref["id"] for ref in listed["results"]) == sorted(entries)
    assert {entry["recent_submission_id"] for entry in listed["time_entries"].values()} == {second}


async def test_a_timesheet_holds_one_persons_time(
    api: httpx.AsyncClient, seeder: KantataSeeder, people: People
) -> None:
    workspace_id = await _workspace(api, require_time_approvals=True)
    await seeder.add_to_project(workspace_id, [people.consultant, people.senior])
    entries = await seeder.log_time(
        workspace_id,
        [
            TimeLog(people.consultant.user_id, date(2024, 5, 8), 60),
            TimeLog(people.senior.user_id, date(2024, 5, 8), 60),
        ],
    )

    response = await api.post(
        "/timesheet_submissions",
        json={
            "timesheet_submission": {
                "workspace_id": int(workspace_id),
                "title": "Mixed",
                "line_item_ids": entries,
            }
        },
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "line_item_ids"
