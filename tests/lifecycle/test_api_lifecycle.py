"""The stage machine, the approval gate, promotion, rollback and the audit history."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from app.db import create_db_engine
from tests.conftest import Api


@pytest.fixture
def bundle(api: Api) -> Api:
    api.create_bundle()
    return api


def production(api: Api) -> str | None:
    value = api.client.get("/api/bundles/support-bot", headers=api.keys["runtime"]).json()["production"]
    return str(value) if value else None


class TestStageMachine:
    @pytest.mark.parametrize(
        ("path", "illegal"),
        [
            ([], "validation"),
            ([], "production"),
            (["staging"], "production"),
            (["staging"], "draft"),
            (["archived"], "validation"),
            (["staging", "validation"], "draft"),
        ],
    )
    def test_illegal_moves_are_409_and_change_nothing(
        self, bundle: Api, path: list[str], illegal: str
    ) -> None:
        bundle.publish()
        for stage in path:
            assert bundle.move(1, stage).status_code == 200
        response = bundle.move(1, illegal, who="approver")
        assert response.status_code == 409
        assert response.json()["type"] == "illegal-transition"
        stage = bundle.client.get(
            "/api/bundles/support-bot/versions/1", headers=bundle.keys["runtime"]
        ).json()
        assert stage["stage"] == (path[-1] if path else "draft")

    def test_legal_moves_return_the_transition_record(self, bundle: Api) -> None:
        bundle.publish()
        record = bundle.move(1, "staging", reason="try it").json()
        assert record["version_id"] == "support-bot@1"
        assert (record["from_stage"], record["to_stage"], record["kind"]) == (
            "draft",
            "staging",
            "transition",
        )
        assert record["actor"] == "editor" and record["reason"] == "try it"
        for stage in ("validation", "staging", "archived", "staging"):
            assert bundle.move(1, stage).status_code == 200

    def test_runtime_key_cannot_move_versions(self, bundle: Api) -> None:
        bundle.publish()
        assert bundle.move(1, "staging", who="runtime").status_code == 403


class TestApprovalGate:
    def test_editor_cannot_promote_even_when_approved(self, bundle: Api) -> None:
        bundle.publish()
        bundle.move(1, "staging")
        bundle.move(1, "validation")
        assert bundle.approve(1).status_code == 201
        assert bundle.move(1, "production", who="editor").status_code == 403
        assert production(bundle) is None

    def test_promotion_without_approval_is_409(self, bundle: Api) -> None:
        bundle.publish()
        bundle.move(1, "staging")
        bundle.move(1, "validation")
        response = bundle.move(1, "production", who="approver")
        assert response.status_code == 409
        assert response.json()["type"] == "approval-required"
        assert "0 of 1" in response.json()["detail"]

    def test_authors_cannot_approve_their_own_version(self, api: Api) -> None:
        api.client.post("/api/bundles", json={"name": "support-bot"}, headers=api.keys["approver"])
        response = api.client.post(
            "/api/bundles/support-bot/versions",
            json={"model": "openai/gpt-4o", "system_prompt": "Hi"},
            headers=api.keys["approver"],
        )
        assert response.status_code == 201
        api.move(1, "staging")
        api.move(1, "validation")
        assert api.approve(1, who="approver").status_code == 403
        assert api.approve(1, who="approver2").status_code == 201

    def test_one_approval_per_key(self, bundle: Api) -> None:
        bundle.publish()
        bundle.move(1, "staging")
        assert bundle.approve(1).status_code == 201
        again = bundle.approve(1)
        assert again.status_code == 409
        listed = bundle.client.get(
            "/api/bundles/support-bot/versions/1/approvals", headers=bundle.keys["runtime"]
        ).json()
        assert [a["approver"] for a in listed] == ["approver"]

    def test_draft_versions_cannot_be_approved(self, bundle: Api) -> None:
        bundle.publish()
        assert bundle.approve(1).status_code == 409

    def test_two_required_approvals_need_two_distinct_approvers(self, bundle: Api) -> None:
        bundle.client.patch(
            "/api/bundles/support-bot", json={"required_approvals": 2}, headers=bundle.keys["approver"]
        )
        bundle.publish()
        bundle.move(1, "staging")
        bundle.move(1, "validation")
        bundle.approve(1)
        assert bundle.move(1, "production", who="approver").status_code == 409
        bundle.approve(1, who="approver2")
        assert bundle.move(1, "production", who="approver").status_code == 200


class TestPromotion:
    def test_promotion_archives_the_previous_production_version(self, bundle: Api) -> None:
        bundle.publish()
        bundle.to_production(1)
        bundle.publish(params={"temperature": 0.5})
        bundle.to_production(2)
        assert production(bundle) == "support-bot@2"
        v1 = bundle.client.get("/api/bundles/support-bot/versions/1", headers=bundle.keys["runtime"]).json()
        assert v1["stage"] == "archived"

    def test_expected_production_mismatch_is_409_and_changes_nothing(self, bundle: Api) -> None:
        bundle.publish()
        bundle.to_production(1)
        bundle.publish(params={"temperature": 0.5})
        bundle.move(2, "staging")
        bundle.move(2, "validation")
        bundle.approve(2)
        stale = bundle.move(2, "production", who="approver2", expected_production=None)
        assert stale.status_code == 409
        assert stale.json()["type"] == "production-changed"
        assert production(bundle) == "support-bot@1"
        fresh = bundle.move(2, "production", who="approver2", expected_production=1)
        assert fresh.status_code == 200
        assert production(bundle) == "support-bot@2"


class TestRollback:
    def _three_in_a_row(self, api: Api) -> None:
        for number, temperature in ((1, 0.1), (2, 0.2), (3, 0.3)):
            api.publish(params={"temperature": temperature})
            api.to_production(number)

    def test_rollback_without_to_returns_to_the_previous_production(self, bundle: Api) -> None:
        self._three_in_a_row(bundle)
        response = bundle.client.post(
            "/api/bundles/support-bot/rollback",
            json={"reason": "bad answers"},
            headers=bundle.keys["approver"],
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["from"], body["to"]) == ("support-bot@3", "support-bot@2")
        assert body["transition"]["kind"] == "rollback"
        assert body["transition"]["reason"] == "bad answers"
        assert production(bundle) == "support-bot@2"

    def test_repeated_rollbacks_walk_back_through_production_history(self, bundle: Api) -> None:
        self._three_in_a_row(bundle)
        for expected in ("support-bot@2", "support-bot@1"):
            response = bundle.client.post(
                "/api/bundles/support-bot/rollback",
                json={"reason": "walk back"},
                headers=bundle.keys["approver"],
            )
            assert response.json()["to"] == expected
        last = bundle.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "again"}, headers=bundle.keys["approver"]
        )
        assert last.status_code == 409
        assert production(bundle) == "support-bot@1"

    def test_rollback_to_a_named_earlier_production_version(self, bundle: Api) -> None:
        self._three_in_a_row(bundle)
        response = bundle.client.post(
            "/api/bundles/support-bot/rollback",
            json={"reason": "x", "to": 1},
            headers=bundle.keys["approver"],
        )
        assert response.status_code == 200
        assert production(bundle) == "support-bot@1"
        v3 = bundle.client.get("/api/bundles/support-bot/versions/3", headers=bundle.keys["runtime"]).json()
        assert v3["stage"] == "archived"

    def test_rollback_to_a_version_never_in_production_is_409(self, bundle: Api) -> None:
        bundle.publish()
        bundle.to_production(1)
        bundle.publish(params={"temperature": 1.5})
        response = bundle.client.post(
            "/api/bundles/support-bot/rollback",
            json={"reason": "x", "to": 2},
            headers=bundle.keys["approver"],
        )
        assert response.status_code == 409
        assert production(bundle) == "support-bot@1"

    def test_rollback_with_nothing_in_production_is_409(self, bundle: Api) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "x"}, headers=bundle.keys["approver"]
        )
        assert response.status_code == 409

    def test_rollback_needs_a_reason_and_an_approver(self, bundle: Api) -> None:
        self._three_in_a_row(bundle)
        no_reason = bundle.client.post(
            "/api/bundles/support-bot/rollback", json={}, headers=bundle.keys["approver"]
        )
        assert no_reason.status_code == 422
        assert no_reason.json()["errors"][0]["field"] == "reason"
        editor = bundle.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "x"}, headers=bundle.keys["editor"]
        )
        assert editor.status_code == 403
        assert production(bundle) == "support-bot@3"


class TestHistory:
    def test_history_is_newest_first_with_kinds_and_actors(self, bundle: Api) -> None:
        bundle.publish()
        bundle.to_production(1)
        bundle.publish(params={"temperature": 0.5})
        bundle.to_production(2)
        bundle.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "oops"}, headers=bundle.keys["approver"]
        )
        history = bundle.client.get("/api/bundles/support-bot/history", headers=bundle.keys["runtime"]).json()
        assert [(h["version_id"], h["to_stage"], h["kind"]) for h in history[:4]] == [
            ("support-bot@1", "production", "rollback"),
            ("support-bot@2", "archived", "rollback"),
            ("support-bot@2", "production", "promotion"),
            ("support-bot@1", "archived", "promotion"),
        ]
        assert history[0]["actor"] == "approver"
        assert history[2]["actor"] == "approver2"
        ids = [h["id"] for h in history]
        assert ids == sorted(ids, reverse=True)

    def test_history_rows_cannot_be_updated_or_deleted_even_in_sql(
        self, bundle: Api, database_url: str
    ) -> None:
        bundle.publish()
        bundle.move(1, "staging")
        engine = create_db_engine(database_url)
        try:
            for statement in ("UPDATE transition SET reason = 'rewritten'", "DELETE FROM transition"):
                with pytest.raises(DatabaseError), engine.begin() as conn:
                    conn.execute(text(statement))
            with pytest.raises(DatabaseError), engine.begin() as conn:
                conn.execute(text("UPDATE version SET system_prompt = 'changed'"))
        finally:
            engine.dispose()
        history = bundle.client.get("/api/bundles/support-bot/history", headers=bundle.keys["runtime"]).json()
        assert history[0]["reason"] == ""


class TestHistoryPages:
    def test_a_full_page_points_at_the_next_one(self, bundle: Api) -> None:
        bundle.publish()
        for stage in ("staging", "validation", "staging", "validation"):
            bundle.move(1, stage)
        first = bundle.client.get("/api/bundles/support-bot/history?limit=3", headers=bundle.keys["runtime"])
        assert len(first.json()) == 3
        cursor = first.headers["x-chatver-next-before"]
        rest = bundle.client.get(
            f"/api/bundles/support-bot/history?limit=3&before={cursor}", headers=bundle.keys["runtime"]
        )
        assert len(rest.json()) == 1 and "x-chatver-next-before" not in rest.headers
        assert [r["id"] for r in first.json() + rest.json()] == sorted(
            [r["id"] for r in first.json() + rest.json()], reverse=True
        )


class TestFourEyes:
    def test_required_approvals_cannot_be_set_below_one(self, bundle: Api) -> None:
        response = bundle.client.patch(
            "/api/bundles/support-bot", json={"required_approvals": 0}, headers=bundle.keys["approver"]
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "required_approvals"

    def test_whitespace_reason_is_not_a_reason(self, bundle: Api) -> None:
        response = bundle.client.post(
            "/api/bundles/support-bot/rollback", json={"reason": "   "}, headers=bundle.keys["approver"]
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "reason"
