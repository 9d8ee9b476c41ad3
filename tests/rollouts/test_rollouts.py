"""Guarded rollouts end to end through the gateway: promoted on evidence, rolled back on a regression,
stopped when the evidence never comes or the promotion is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from app.db import write_session
from app.dbtypes import utcnow
from app.rollouts.controller import RolloutController
from app.rollouts.models import Rollout
from tests.conftest import ALLOWED_API_BASE, Api
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, flush_events, ok

CANDIDATE_UPSTREAM = f"{ALLOWED_API_BASE}/candidate/chat/completions"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"llm_transport": "httpx", "llm_num_retries": 0, "llm_timeout_seconds": 5}


@pytest.fixture
def ready(api: Api) -> Api:
    """v1 in production; v2 approved in validation, calling its own upstream path."""
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS)
    api.to_production(1)
    api.publish(params={**GATEWAY_PARAMS, "api_base": f"{ALLOWED_API_BASE}/candidate", "temperature": 0.4})
    api.move(2, "staging")
    api.move(2, "validation")
    assert api.approve(2).status_code == 201
    return api


def rollout_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "version": 2,
        "steps": [10, 50, 100],
        "min_requests_per_step": 15,
        "guardrails": [{"metric": "error_rate", "max_regression": 0.02}],
    }
    body.update(overrides)
    return body


def start(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.client.post(
        "/api/bundles/support-bot/rollouts", json=rollout_body(**overrides), headers=api.keys["approver2"]
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def drive(api: Api, count: int, offset: int = 0) -> dict[str, int]:
    served: dict[str, int] = {}
    for i in range(offset, offset + count):
        response = chat(api, headers={"x-chatver-subject": f"user-{i}"})
        served[response.headers["x-chatver-version-id"]] = (
            served.get(response.headers["x-chatver-version-id"], 0) + 1
        )
    flush_events(api)
    return served


def status_of(api: Api, rollout: dict[str, Any]) -> dict[str, Any]:
    response = api.client.get(f"/api/rollouts/{rollout['id']}", headers=api.keys["runtime"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def controller(app: FastAPI) -> RolloutController:
    return app.state.rollouts  # type: ignore[no-any-return]


class TestHealthyRollout:
    def test_ramps_step_by_step_and_promotes_at_100(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.post(CANDIDATE_UPSTREAM).mock(return_value=ok())
        rollout = start(ready)
        assert rollout["percent"] == 10 and rollout["status"] == "running"
        assert rollout["state"] == "waiting-for-data"
        assert controller(app).check_once() == {rollout["id"]: "waiting"}
        served = drive(ready, 600)
        assert 30 <= served.get("support-bot@2", 0) <= 100  # ~10% of 600: enough subjects to judge
        assert status_of(ready, rollout)["state"] == "ready"
        assert controller(app).check_once() == {rollout["id"]: "advanced"}
        status = status_of(ready, rollout)
        # The next step is judged on its own traffic: the split changed.
        assert status["percent"] == 50 and status["requests"] == {"candidate": 0, "baseline": 0}
        served = drive(ready, 120, offset=1000)
        assert served.get("support-bot@2", 0) >= 30  # ~50% now
        assert controller(app).check_once() == {rollout["id"]: "promoted"}
        bundle = ready.client.get("/api/bundles/support-bot", headers=ready.keys["runtime"]).json()
        assert bundle["production"] == "support-bot@2"
        history = ready.client.get("/api/bundles/support-bot/history", headers=ready.keys["runtime"]).json()
        assert (history[0]["version_id"], history[0]["kind"], history[0]["actor"]) == (
            "support-bot@2",
            "promotion",
            "system",
        )
        assert drive(ready, 10, offset=5000) == {"support-bot@2": 10}

    def test_sticky_subjects_stay_on_the_candidate_as_the_ramp_grows(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.post(CANDIDATE_UPSTREAM).mock(return_value=ok())
        rollout = start(ready, min_requests_per_step=5)
        early = {
            i
            for i in range(500)
            if chat(ready, headers={"x-chatver-subject": f"user-{i}"}).headers["x-chatver-version-id"]
            == "support-bot@2"
        }
        flush_events(ready)
        assert controller(app).check_once() == {rollout["id"]: "advanced"}  # ~50 subjects on the candidate
        later = {
            i
            for i in range(500)
            if chat(ready, headers={"x-chatver-subject": f"user-{i}"}).headers["x-chatver-version-id"]
            == "support-bot@2"
        }
        assert early and early <= later and len(later) > len(early)


class TestPromotionNeedsEvidence:
    def test_the_last_step_waits_until_the_regression_is_shown_within_tolerance(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        # One candidate call in 40 fails: +2.5pp against an error-free baseline is past the 5pp
        # tolerance's half-way mark but inside it. A few dozen requests cannot show that; the
        # promotion waits for the always-valid upper bound to come inside the tolerance.
        calls = {"n": 0}

        def candidate(_: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            return httpx.Response(500, json={"error": {"message": "boom"}}) if calls["n"] % 40 == 0 else ok()

        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.post(CANDIDATE_UPSTREAM).mock(side_effect=candidate)
        rollout = start(ready, steps=[50, 100], guardrails=[{"metric": "error_rate", "max_regression": 0.05}])
        drive(ready, 120)
        status = status_of(ready, rollout)
        assert controller(app).check_once() == {rollout["id"]: "waiting"}
        assert status["state"] == "waiting-for-evidence"
        assert any("not yet shown within tolerance before promotion" in w for w in status["waiting_for"])
        drive(ready, 3000, offset=1000)
        assert controller(app).check_once() == {rollout["id"]: "promoted"}


class TestRuntimeReportedRollouts:
    """A runtime that calls providers itself reads the rollout from /active and reports events."""

    def _serve_and_report(self, api: Api, count: int, *, candidate_error: bool = False) -> int:
        events, on_candidate = [], 0
        for i in range(count):
            active = api.client.get(
                f"/api/bundles/support-bot/active?subject=r-{i}", headers=api.keys["runtime"]
            ).json()
            rollout = active["rollout"]
            candidate = rollout["arm"] == "candidate"
            on_candidate += candidate
            events.append(
                {
                    "version_id": active["version_id"],
                    "subject": f"r-{i}",
                    "rollout": rollout["id"],
                    "step": rollout["step"],
                    "latency_ms": 500,
                    "error": "timeout" if candidate and candidate_error else None,
                }
            )
        for start_at in range(0, len(events), 1000):
            response = api.client.post(
                "/api/events", json=events[start_at : start_at + 1000], headers=api.keys["runtime"]
            )
            assert response.status_code == 202, response.text
        return on_candidate

    def test_reported_events_are_the_steps_evidence(self, ready: Api, app: FastAPI) -> None:
        rollout = start(ready)
        assert self._serve_and_report(ready, 400) >= 20
        status = status_of(ready, rollout)
        assert status["requests"]["candidate"] >= 20 and status["state"] == "ready"
        assert controller(app).check_once() == {rollout["id"]: "advanced"}

    def test_reported_errors_roll_the_candidate_back(self, ready: Api, app: FastAPI) -> None:
        rollout = start(ready)
        self._serve_and_report(ready, 400, candidate_error=True)
        assert controller(app).check_once() == {rollout["id"]: "rolled-back"}

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"step": 1}, "step"),  # the rollout is at step 0
            ({"step": 0, "rollout": None}, "step"),
            ({"experiment": "exp_0000000000000000"}, "rollout"),
            ({"rollout": "ro_0000000000000000"}, "rollout"),
            ({"version_id": "support-bot@1", "rollout": "ro_0000000000000000"}, "rollout"),
        ],
    )
    def test_bad_rollout_events_name_the_field_and_store_nothing(
        self, ready: Api, overrides: dict[str, Any], field: str
    ) -> None:
        rollout = start(ready)
        body = {"version_id": "support-bot@2", "subject": "u", "rollout": rollout["id"], "step": 0}
        body.update(overrides)
        body = {k: v for k, v in body.items() if v is not None}
        response = ready.client.post("/api/events", json=[body, body], headers=ready.keys["runtime"])
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == f"0.{field}"
        assert status_of(ready, rollout)["requests"] == {"candidate": 0, "baseline": 0}


class TestFailingRollout:
    def test_an_error_spike_rolls_back_automatically(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.post(CANDIDATE_UPSTREAM).mock(
            return_value=httpx.Response(500, json={"error": {"message": "boom"}})
        )
        rollout = start(ready)
        served = drive(ready, 600)
        assert served.get("support-bot@2", 0) >= 30  # ~60 expected: enough for the guardrail to judge
        assert controller(app).check_once() == {rollout["id"]: "rolled-back"}
        status = ready.client.get(f"/api/rollouts/{rollout['id']}", headers=ready.keys["runtime"]).json()
        assert status["status"] == "rolled-back"
        assert "error_rate regressed by" in status["reason"]
        history = ready.client.get("/api/bundles/support-bot/history", headers=ready.keys["runtime"]).json()
        assert history[0]["kind"] == "auto-rollback" and history[0]["actor"] == "system"
        assert history[0]["version_id"] == "support-bot@2" and history[0]["to_stage"] == "staging"
        assert "error_rate" in history[0]["reason"]
        # Traffic is back on production at once.
        assert drive(ready, 30, offset=9000) == {"support-bot@1": 30}
        bundle = ready.client.get("/api/bundles/support-bot", headers=ready.keys["runtime"]).json()
        assert bundle["production"] == "support-bot@1"


class TestRolloutRules:
    def test_unapproved_versions_cannot_roll_out(self, ready: Api) -> None:
        ready.publish(params={**GATEWAY_PARAMS, "temperature": 1.3})
        ready.move(3, "staging")
        ready.move(3, "validation")
        response = ready.client.post(
            "/api/bundles/support-bot/rollouts", json=rollout_body(version=3), headers=ready.keys["approver2"]
        )
        assert response.status_code == 409
        assert response.json()["type"] == "approval-required"

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"steps": [50, 10, 100]}, "steps"),
            ({"steps": [10, 50]}, "steps"),
            ({"steps": [0, 100]}, "steps"),
            ({"steps": [100]}, "steps"),
            ({"max_wait_seconds": 5}, "max_wait_seconds"),
            ({"guardrails": [{"metric": "vibes", "max_regression": 0.1}]}, "guardrails.0.metric"),
            ({"guardrails": []}, "guardrails"),
            ({"guardrails": [{"metric": "error_rate", "max_regression": 0.1}] * 2}, "guardrails"),
            ({"min_requests_per_step": 0}, "min_requests_per_step"),
        ],
    )
    def test_bad_rollouts_name_the_problem(self, ready: Api, overrides: dict[str, Any], field: str) -> None:
        response = ready.client.post(
            "/api/bundles/support-bot/rollouts",
            json=rollout_body(**overrides),
            headers=ready.keys["approver2"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field

    def test_only_one_rollout_or_experiment_at_a_time(self, ready: Api) -> None:
        start(ready)
        again = ready.client.post(
            "/api/bundles/support-bot/rollouts", json=rollout_body(), headers=ready.keys["approver2"]
        )
        assert again.status_code == 409
        experiment = ready.client.post(
            "/api/bundles/support-bot/experiments",
            json={
                "name": "x",
                "arms": [{"name": "a", "version": 1, "weight": 1}, {"name": "b", "version": 2, "weight": 1}],
            },
            headers=ready.keys["editor"],
        ).json()
        started = ready.client.post(
            f"/api/experiments/{experiment['id']}/start", headers=ready.keys["editor"]
        )
        assert started.status_code == 409 and started.json()["type"] == "rollout-running"

    def test_editors_cannot_start_rollouts(self, ready: Api) -> None:
        response = ready.client.post(
            "/api/bundles/support-bot/rollouts", json=rollout_body(), headers=ready.keys["editor"]
        )
        assert response.status_code == 403

    def test_steps_without_a_comparison_are_refused_with_the_reason(self, ready: Api) -> None:
        response = ready.client.post(
            "/api/bundles/support-bot/rollouts",
            json=rollout_body(steps=[100]),
            headers=ready.keys["approver2"],
        )
        assert response.status_code == 422
        assert "compares the candidate with production" in response.json()["errors"][0]["message"]

    def test_a_rollback_without_an_earlier_production_is_409_and_the_rollout_goes_on(
        self, ready: Api
    ) -> None:
        rollout = start(ready)
        response = ready.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "x"}, headers=ready.keys["approver"]
        )
        assert response.status_code == 409 and response.json()["type"] == "nothing-to-roll-back"
        assert status_of(ready, rollout)["status"] == "running"

    def test_a_manual_rollback_stops_the_rollout(self, ready: Api) -> None:
        ready.publish(params={**GATEWAY_PARAMS, "temperature": 1.7})
        ready.to_production(3)  # v1 archived, v3 serves; v2 still approved in validation
        rollout = start(ready)
        assert rollout["baseline_version_id"] == "support-bot@3"
        response = ready.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "pager"}, headers=ready.keys["approver"]
        )
        assert response.status_code == 200, response.text
        assert response.json()["to"] == "support-bot@1"
        status = status_of(ready, rollout)
        assert status["status"] == "stopped" and status["reason"] == "rollback: pager"
        assert drive(ready, 20, offset=7000) == {"support-bot@1": 20}

    def test_stopping_by_hand_returns_traffic_to_production(
        self, ready: Api, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        rollout = start(ready, steps=[90, 100])
        response = ready.client.post(
            f"/api/rollouts/{rollout['id']}/stop", json={"reason": "looks off"}, headers=ready.keys["editor"]
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "stopped" and "looks off" in response.json()["reason"]
        assert drive(ready, 20) == {"support-bot@1": 20}
        again = ready.client.post(
            f"/api/rollouts/{rollout['id']}/stop", json={"reason": "again"}, headers=ready.keys["editor"]
        )
        assert again.status_code == 409
        runtime = ready.client.post(
            f"/api/rollouts/{rollout['id']}/stop", json={"reason": "x"}, headers=ready.keys["runtime"]
        )
        assert runtime.status_code == 403

    def test_the_bundle_shows_its_running_rollout_until_it_stops(self, ready: Api) -> None:
        rollout = start(ready)
        shown = ready.client.get("/api/bundles/support-bot", headers=ready.keys["runtime"]).json()
        assert (shown["rollout"], shown["experiment"]) == (rollout["id"], None)
        listed = ready.client.get("/api/bundles", headers=ready.keys["runtime"]).json()
        assert [b["rollout"] for b in listed] == [rollout["id"]]
        stopped = ready.client.post(
            f"/api/rollouts/{rollout['id']}/stop", json={"reason": "enough"}, headers=ready.keys["editor"]
        )
        assert stopped.status_code == 200, stopped.text
        shown = ready.client.get("/api/bundles/support-bot", headers=ready.keys["runtime"]).json()
        assert shown["rollout"] is None

    def test_active_reports_a_rollout_as_a_rollout(self, ready: Api) -> None:
        rollout = start(ready, steps=[50, 100])
        for i in range(40):
            body = ready.client.get(
                f"/api/bundles/support-bot/active?subject=u-{i}", headers=ready.keys["runtime"]
            ).json()
            assert body["experiment"] is None
            assert body["rollout"]["id"] == rollout["id"] and body["rollout"]["percent"] == 50
            assert body["rollout"]["arm"] == (
                "candidate" if body["version_id"] == "support-bot@2" else "baseline"
            )


class TestEvidence:
    def test_a_step_does_not_advance_while_a_guardrail_only_warns(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        calls = {"n": 0}

        def flaky(request: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            if calls["n"] % 12 == 0:
                return httpx.Response(500, json={"error": {"message": "boom"}})
            return ok()

        upstream.post(CANDIDATE_UPSTREAM).mock(side_effect=flaky)
        rollout = start(ready, guardrails=[{"metric": "error_rate", "max_regression": 0.0}])
        drive(ready, 600)
        status = status_of(ready, rollout)
        assert status["guardrails"][0]["status"] == "warning"  # worse, but not provably so
        assert status["state"] == "waiting-for-evidence"
        assert any("error_rate regressed" in need for need in status["waiting_for"])
        assert controller(app).check_once() == {rollout["id"]: "waiting"}

    def test_a_step_that_never_gathers_evidence_times_out_and_stops(self, ready: Api, app: FastAPI) -> None:
        rollout = start(ready, max_wait_seconds=60)
        assert controller(app).check_once() == {rollout["id"]: "waiting"}
        with write_session(app.state.engine) as session, session.begin():
            row = session.get(Rollout, rollout["id"])
            assert row is not None
            row.step_started_at = utcnow() - timedelta(seconds=61)
        assert controller(app).check_once() == {rollout["id"]: "timed-out"}
        status = status_of(ready, rollout)
        assert status["status"] == "stopped"
        assert status["reason"].startswith(
            "no passing evidence at 10% traffic within 60s: error_rate: not enough data"
        )
        active = ready.client.get("/api/bundles/support-bot/active", headers=ready.keys["runtime"]).json()
        assert active["version_id"] == "support-bot@1" and active["rollout"] is None

    def test_a_refused_promotion_stops_the_rollout_with_the_reason(
        self, ready: Api, app: FastAPI, upstream: respx.MockRouter
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        upstream.post(CANDIDATE_UPSTREAM).mock(return_value=ok())
        rollout = start(ready, steps=[50, 100])
        drive(ready, 120)
        raised = ready.client.patch(
            "/api/bundles/support-bot", json={"required_approvals": 3}, headers=ready.keys["admin"]
        )
        assert raised.status_code == 200, raised.text
        assert controller(app).check_once() == {rollout["id"]: "stopped"}
        status = status_of(ready, rollout)
        assert status["status"] == "stopped" and status["reason"].startswith("promotion refused:")
        assert status["percent"] == 50
        bundle = ready.client.get("/api/bundles/support-bot", headers=ready.keys["runtime"]).json()
        assert bundle["production"] == "support-bot@1"
        assert controller(app).check_once() == {}  # not retried forever


class TestController:
    def test_two_replicas_never_act_on_the_same_rollout(
        self, ready: Api, app: FastAPI, database_url: str
    ) -> None:
        rollout = start(ready)
        other = RolloutController(app.state.engine, app.state.changes, interval=1)
        assert controller(app).check_once() == {rollout["id"]: "waiting"}
        assert other.check_once() == {rollout["id"]: "leased-elsewhere"}
