"""The client commands against a live server: listings, show, diff, refusals, lifecycle, traffic, keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from tests.cli.conftest import Run
from tests.conftest import Api


def _two_versions(api: Api) -> None:
    api.create_bundle()
    api.publish()
    api.publish(
        model="openai/gpt-4o",
        system_prompt="You are {{ company }}'s agent. Be {{ tone }} and brief.",
        params={"temperature": 0.7, "max_tokens": 512},
    )


class TestListings:
    def test_bundles_as_a_table_and_as_json(self, run: Run, api: Api) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        table = run("bundles", role="runtime")
        assert table.exit_code == 0, table.output
        assert "support-bot" in table.stdout and "support-bot@1" in table.stdout
        listed = json.loads(run("bundles", "--json", role="runtime").stdout)
        assert [(b["name"], b["production"]) for b in listed] == [("support-bot", "support-bot@1")]

    def test_versions_newest_first_with_json(self, run: Run, api: Api) -> None:
        _two_versions(api)
        listed = json.loads(run("versions", "support-bot", "--json").stdout)
        assert [v["version_id"] for v in listed] == ["support-bot@2", "support-bot@1"]
        table = run("versions", "support-bot")
        assert table.stdout.index("support-bot@2") < table.stdout.index("support-bot@1")

    def test_show_prints_the_config_and_prompt(self, run: Run, api: Api) -> None:
        _two_versions(api)
        result = run("show", "support-bot@2")
        assert result.exit_code == 0
        assert "openai/gpt-4o" in result.stdout
        assert "Be {{ tone }} and brief." in result.stdout
        assert json.loads(run("show", "support-bot@1", "--json").stdout)["number"] == 1

    def test_show_needs_name_at_number(self, run: Run) -> None:
        result = run("show", "support-bot")
        assert result.exit_code == 2
        assert "NAME@N" in result.stderr

    def test_diff_shows_changed_fields_and_the_prompt_diff(self, run: Run, api: Api) -> None:
        _two_versions(api)
        result = run("diff", "support-bot", "1", "2")
        assert result.exit_code == 0, result.output
        assert "params.temperature" in result.stdout and "0.7" in result.stdout
        assert "openai/gpt-4o-mini" in result.stdout
        assert "+You are {{ company }}'s agent. Be {{ tone }} and brief." in result.stdout
        as_json = json.loads(run("diff", "support-bot", "1", "2", "--json").stdout)
        assert as_json["from"] == "support-bot@1" and as_json["to"] == "support-bot@2"


class TestRefusals:
    def test_a_refusal_is_one_line_from_the_problem_detail_and_exit_1(self, run: Run, api: Api) -> None:
        api.create_bundle()
        api.publish()
        result = run("promote", "support-bot", "1", role="approver")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("chatver: refused (409")

    def test_a_too_low_role_is_refused_with_403(self, run: Run, api: Api) -> None:
        api.create_bundle()
        result = run("keys", "list", role="editor")
        assert result.exit_code == 1
        assert "refused (403" in result.stderr

    def test_a_validation_refusal_names_its_first_field(self, run: Run, api: Api) -> None:
        api.create_bundle()
        api.publish()
        result = run("experiment", "create", "support-bot", "--name", "x", "--arm", "a=1", "--arm", "b=1")
        assert result.exit_code == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert "refused (4" in result.stderr

    def test_without_an_api_key_it_is_a_usage_error(self, server_url: str) -> None:
        from typer.testing import CliRunner

        from app.cli.main import app

        result = CliRunner().invoke(app, ["bundles"], env={"CHATVER_URL": server_url, "CHATVER_API_KEY": ""})
        assert result.exit_code == 2
        assert "CHATVER_API_KEY" in result.stderr


class TestLifecycle:
    def test_stage_approve_promote_then_history(self, run: Run, api: Api) -> None:
        api.create_bundle()
        api.publish()
        assert run("stage", "support-bot", "1", "staging").stdout.strip() == "support-bot@1: draft → staging"
        assert run("stage", "support-bot", "1", "validation").exit_code == 0
        approved = run("approve", "support-bot", "1", "--comment", "lgtm", role="approver")
        assert approved.exit_code == 0, approved.output
        promoted = run("promote", "support-bot", "1", "--reason", "ship", role="approver2")
        assert promoted.exit_code == 0, promoted.output
        assert "validation → production" in promoted.stdout
        records = json.loads(run("history", "support-bot", "--json").stdout)
        assert records[0]["kind"] == "promotion" and records[0]["reason"] == "ship"
        assert "promotion" in run("history", "support-bot").stdout

    def test_rollback_restores_the_previous_production(self, run: Run, api: Api) -> None:
        _two_versions(api)
        api.to_production(1)
        api.to_production(2)
        result = run("rollback", "support-bot", "--reason", "answers too long", role="approver")
        assert result.exit_code == 0, result.output
        assert "rolled back support-bot@2 → support-bot@1" in result.stdout
        bundle = json.loads(run("bundles", "--json").stdout)[0]
        assert bundle["production"] == "support-bot@1"

    def test_fleet_exits_3_while_a_runtime_is_behind(self, run: Run, api: Api) -> None:
        _two_versions(api)
        api.to_production(1)
        api.to_production(2)

        def beat(version: int) -> None:
            digest = api.client.get(
                f"/api/bundles/support-bot/versions/{version}", headers=api.keys["runtime"]
            ).json()["digest"]
            body = {
                "runtime_id": "web-1",
                "bundles": [
                    {"bundle": "support-bot", "version_id": f"support-bot@{version}", "digest": digest}
                ],
            }
            assert (
                api.client.post("/api/runtimes/heartbeat", json=body, headers=api.keys["runtime"]).status_code
                == 202
            )

        beat(2)
        current = run("fleet", "support-bot")
        assert current.exit_code == 0 and "web-1" in current.stdout and "current" in current.stdout
        assert run("rollback", "support-bot", "--reason", "bad", role="approver").exit_code == 0
        behind = run("fleet", "support-bot", "--json")
        assert behind.exit_code == 3 and json.loads(behind.stdout)[0]["current"] is False
        beat(1)
        assert run("fleet", "support-bot").exit_code == 0

    def test_rollback_needs_a_reason(self, run: Run) -> None:
        assert run("rollback", "support-bot", role="approver").exit_code == 2


class TestTraffic:
    def test_experiment_create_start_results_stop(self, run: Run, api: Api) -> None:
        _two_versions(api)
        api.to_production(1)
        assert api.move(2, "staging").status_code == 200
        created = run(
            "experiment", "create", "support-bot", "--name", "brief", "--arm", "control=1:50",
            "--arm", "treatment=2:50", "--primary-metric", "thumbs_up", "--json",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
        experiment = json.loads(created.stdout)
        assert experiment["status"] == "draft"
        started = run("experiment", "start", experiment["id"])
        assert "running" in started.stdout
        results = json.loads(run("experiment", "results", experiment["id"], "--json").stdout)
        assert [a["name"] for a in results["arms"]] == ["control", "treatment"]
        assert "decision:" in run("experiment", "results", experiment["id"]).stdout
        assert run("experiment", "pause", experiment["id"]).exit_code == 0
        stopped = run("experiment", "stop", experiment["id"], "--reason", "enough")
        assert "stopped" in stopped.stdout

    def test_rollout_create_and_show(self, run: Run, api: Api) -> None:
        _two_versions(api)
        api.to_production(1)
        for stage in ("staging", "validation"):
            assert api.move(2, stage).status_code == 200
        assert api.approve(2).status_code == 201
        created = run(
            "rollout",
            "create",
            "support-bot",
            "2",
            "--guardrail",
            "error_rate=0.02",
            "--json",
            role="approver",
        )
        assert created.exit_code == 0, created.output
        rollout = json.loads(created.stdout)
        shown = run("rollout", "show", rollout["id"])
        assert shown.exit_code == 0
        assert f"{rollout['id']} support-bot@2 vs support-bot@1: running" in shown.stdout


class TestKeys:
    def test_create_list_and_revoke(self, run: Run) -> None:
        created = run("keys", "create", "ci", "--role", "editor", "--json", role="admin")
        assert created.exit_code == 0, created.output
        key = json.loads(created.stdout)
        assert key["key"]
        listed = json.loads(run("keys", "list", "--json", role="admin").stdout)
        assert any(k["id"] == key["id"] and k["revoked_at"] is None for k in listed)
        revoked = run("keys", "revoke", key["id"], role="admin")
        assert revoked.exit_code == 0
        listed = json.loads(run("keys", "list", "--json", role="admin").stdout)
        assert next(k for k in listed if k["id"] == key["id"])["revoked_at"] is not None

    def test_a_revoked_key_is_refused(self, run: Run, server_url: str) -> None:
        from typer.testing import CliRunner

        from app.cli.main import app

        key = json.loads(run("keys", "create", "gone", "--json", role="admin").stdout)
        assert run("keys", "revoke", key["id"], role="admin").exit_code == 0
        env = {"CHATVER_URL": server_url, "CHATVER_API_KEY": key["key"]}
        result = CliRunner().invoke(app, ["bundles"], env=env)
        assert result.exit_code == 1
        assert "refused (401" in result.stderr


class TestClientErrors:
    def test_a_server_that_is_not_chatver_is_one_line(self, tmp_path: Path) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class LoginPage(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<html>please sign in</html>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return None

        server = HTTPServer(("127.0.0.1", 0), LoginPage)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            env = {"CHATVER_URL": f"http://127.0.0.1:{server.server_port}", "CHATVER_API_KEY": "cv_x"}
            result = CliRunner().invoke(app, ["bundles"], env=env)
        finally:
            server.shutdown()
            server.server_close()
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "answered 200 with text/html, not JSON" in result.stderr

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"CHATVER_URL": "http://[::1", "CHATVER_API_KEY": "cv_x"}, "not a usable URL"),
            ({"CHATVER_API_KEY": "cv_s\u00e9cret"}, "characters no chatver key has"),
        ],
    )
    def test_bad_settings_are_usage_errors(self, env: dict[str, str], message: str) -> None:
        result = CliRunner().invoke(app, ["bundles"], env=env)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
