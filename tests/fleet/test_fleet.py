"""The fleet view: runtimes report what they serve; a rollback shows who has not caught up yet."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import respx
from fastapi import FastAPI
from sqlmodel import select

from app.db import write_session
from app.dbtypes import utcnow
from app.fleet.models import RuntimeReport
from tests.conftest import Api
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, ok


@pytest.fixture
def shipped(api: Api) -> Api:
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS)
    api.to_production(1)
    api.publish(params={**GATEWAY_PARAMS, "temperature": 0.9})
    api.to_production(2)
    return api


def beat(api: Api, runtime_id: str, version_id: str, **extra: Any) -> Any:
    digest = api.client.get(
        f"/api/bundles/support-bot/versions/{version_id.rpartition('@')[2]}", headers=api.keys["runtime"]
    ).json()["digest"]
    body = {
        "runtime_id": runtime_id,
        "bundles": [{"bundle": "support-bot", "version_id": version_id, "digest": digest, **extra}],
    }
    return api.client.post("/api/runtimes/heartbeat", json=body, headers=api.keys["runtime"])


def served(bundle: str, version_id: str) -> dict[str, str]:
    return {"bundle": bundle, "version_id": version_id, "digest": "d"}


def fleet(api: Api) -> dict[str, dict[str, Any]]:
    response = api.client.get("/api/bundles/support-bot/fleet", headers=api.keys["runtime"])
    assert response.status_code == 200, response.text
    return {member["runtime_id"]: member for member in response.json()}


def test_a_rollback_shows_who_still_serves_the_old_version(shipped: Api) -> None:
    assert beat(shipped, "web-1", "support-bot@2").status_code == 202
    assert beat(shipped, "web-2", "support-bot@2", stale=True).status_code == 202
    members = fleet(shipped)
    assert members["web-1"]["current"] and members["web-1"]["kind"] == "sdk"
    assert members["web-2"]["stale"] and members["web-1"]["behind_seconds"] is None
    rolled = shipped.client.post(
        "/api/bundles/support-bot/rollback", json={"reason": "bad"}, headers=shipped.keys["approver"]
    )
    assert rolled.status_code == 200, rolled.text
    beat(shipped, "web-1", "support-bot@1")  # web-1 heard of it; web-2 has not
    members = fleet(shipped)
    assert members["web-1"]["current"] and members["web-1"]["version_id"] == "support-bot@1"
    assert not members["web-2"]["current"]
    # Behind since v2 left production (the rollback), not since any later unrelated change.
    assert 0 <= members["web-2"]["behind_seconds"] < 30
    shipped.publish(params={**GATEWAY_PARAMS, "temperature": 0.5})
    assert shipped.move(3, "staging").status_code == 200
    time.sleep(0.3)
    assert fleet(shipped)["web-2"]["behind_seconds"] >= 0.3


def test_runtimes_silent_for_five_minutes_drop_out(shipped: Api, app: FastAPI) -> None:
    beat(shipped, "old", "support-bot@2")
    beat(shipped, "new", "support-bot@2")
    with write_session(app.state.engine) as session:
        row = session.exec(select(RuntimeReport).where(RuntimeReport.runtime_id == "old")).one()
        row.last_seen_at = utcnow() - timedelta(minutes=6)
        session.add(row)
        session.commit()
    assert set(fleet(shipped)) == {"new"}


def test_gateway_replicas_report_what_they_served(
    shipped: Api, app: FastAPI, upstream: respx.MockRouter
) -> None:
    upstream.post(UPSTREAM).mock(return_value=ok())
    assert chat(shipped).status_code == 200
    reporter = app.state.fleet_reporter
    assert reporter.report_once() == 1
    member = fleet(shipped)[reporter.runtime_id]
    assert (member["kind"], member["version_id"], member["current"]) == ("gateway", "support-bot@2", True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"runtime_id": "w", "bundles": [{"bundle": "nope", "version_id": "nope@1", "digest": "d"}]},
            "bundles.0.bundle",
        ),
        (
            {
                "runtime_id": "w",
                "bundles": [{"bundle": "support-bot", "version_id": "other@1", "digest": "d"}],
            },
            "bundles.0.version_id",
        ),
        ({"runtime_id": "has space", "bundles": []}, "runtime_id"),
        ({"runtime_id": "w", "bundles": [{"bundle": "support-bot"}] * 101}, "bundles"),
        ({"runtime_id": "w", "bundles": [], "extra": 1}, "extra"),
    ],
)
def test_bad_heartbeats_name_the_field_and_store_nothing(
    shipped: Api, body: dict[str, Any], field: str
) -> None:
    response = shipped.client.post("/api/runtimes/heartbeat", json=body, headers=shipped.keys["runtime"])
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert fleet(shipped) == {}


def test_fleet_needs_a_key_and_a_real_bundle(shipped: Api) -> None:
    assert shipped.client.get("/api/bundles/support-bot/fleet").status_code == 401
    assert shipped.client.get("/api/bundles/nope/fleet", headers=shipped.keys["runtime"]).status_code == 404
    assert (
        shipped.client.post("/api/runtimes/heartbeat", json={"runtime_id": "w", "bundles": []}).status_code
        == 401
    )


def test_the_bundle_page_shows_who_is_behind(shipped: Api) -> None:
    from tests.ui.conftest import Console, secret

    beat(shipped, "web-1", "support-bot@1")
    browser = Console(shipped.client)
    assert browser.sign_in(secret(shipped, "runtime")).status_code == 303
    page = browser.get("/ui/bundles/support-bot").text
    assert "web-1" in page and "behind" in page


def test_a_bundle_listed_twice_in_one_heartbeat_is_refused(shipped: Api) -> None:
    digest = shipped.client.get(
        "/api/bundles/support-bot/versions/2", headers=shipped.keys["runtime"]
    ).json()["digest"]
    entry = {"bundle": "support-bot", "version_id": "support-bot@2", "digest": digest}
    body = {"runtime_id": "w", "bundles": [entry, entry]}
    response = shipped.client.post("/api/runtimes/heartbeat", json=body, headers=shipped.keys["runtime"])
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "bundles.1.bundle"


def test_pinned_gateway_calls_are_not_what_the_replica_serves(
    shipped: Api, app: FastAPI, upstream: respx.MockRouter
) -> None:
    upstream.post(UPSTREAM).mock(return_value=ok())
    assert chat(shipped, model="support-bot@2").status_code == 200
    assert app.state.fleet_reporter.report_once() == 0
