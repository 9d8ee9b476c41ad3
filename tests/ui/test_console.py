"""The console over HTTP: sessions, CSRF, roles, escaping, error pages and every page's content."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.auth.models import ConsoleSession
from app.db import write_session
from app.dbtypes import utcnow
from app.ui.pages import SESSION_COOKIE
from tests.conftest import Api
from tests.experiments.test_api_experiments import started
from tests.experiments.test_subject_results import event
from tests.ui.conftest import Console, active_version, secret

ConsoleFor = Callable[[str], Console]


def candidate_in_staging(api: Api) -> None:
    """support-bot: v1 in production, v2 in staging (ready for an experiment or a rollout)."""
    api.create_bundle()
    api.publish()
    api.to_production(1)
    api.publish(params={"temperature": 0.9})
    api.move(2, "staging")


XSS = "<script>alert('x')</script>"


class TestSignIn:
    def test_the_root_and_every_page_send_a_stranger_to_sign_in(self, api: Api) -> None:
        browser = Console(api.client)
        assert browser.get("/").headers["location"] == "/ui"
        for path in ("/ui", "/ui/bundles/support-bot", "/ui/keys"):
            response = browser.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/ui/signin?ended=required")

    def test_a_key_becomes_a_strict_http_only_expiring_cookie(self, api: Api) -> None:
        browser = Console(api.client)
        form = browser.get("/ui/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        response = browser.post("/ui/signin", api_key=secret(api, "editor"), csrf=token.group(1), next="/ui")
        assert response.status_code == 303 and response.headers["location"] == "/ui"
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert secret(api, "editor") not in cookie  # the key never reaches the browser's storage
        page = browser.get("/ui")
        assert page.status_code == 200 and "Signed in as <strong>editor</strong>" in page.text

    def test_a_wrong_key_is_refused_with_a_message(self, api: Api) -> None:
        browser = Console(api.client)
        response = browser.sign_in("cv_not-a-key")
        assert response.status_code == 401 and "Unknown or revoked API key" in response.text
        assert SESSION_COOKIE not in browser.jar

    def test_sign_in_without_its_form_token_is_refused(self, api: Api) -> None:
        response = Console(api.client).post("/ui/signin", api_key=secret(api, "admin"), csrf="forged")
        assert response.status_code == 403

    def test_next_never_leaves_the_console(self, api: Api) -> None:
        browser = Console(api.client)
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/ui/signin").text)
        assert token
        response = browser.post(
            "/ui/signin", api_key=secret(api, "admin"), csrf=token.group(1), next="//evil.example/ui"
        )
        assert response.headers["location"] == "/ui"


class TestSessionsEnd:
    def test_sign_out_ends_the_session_on_the_server(self, api: Api, console: ConsoleFor) -> None:
        browser = console("editor")
        stolen = dict(browser.jar)
        response = browser.post("/ui/signout", csrf=browser.csrf())
        assert response.headers["location"] == "/ui/signin?ended=signed-out"
        replay = Console(api.client)
        replay.jar = stolen
        assert replay.get("/ui").headers["location"].startswith("/ui/signin?ended=signed-out")

    def test_a_revoked_key_is_signed_out_at_its_next_request(self, api: Api, console: ConsoleFor) -> None:
        browser = console("editor")
        keys = api.client.get("/api/keys", headers=api.keys["admin"]).json()
        editor = next(k for k in keys if k["name"] == "editor")
        assert api.client.delete(f"/api/keys/{editor['id']}", headers=api.keys["admin"]).status_code in (
            200,
            204,
        )
        response = browser.get("/ui")
        assert response.headers["location"].startswith("/ui/signin?ended=revoked")
        page = Console(api.client).get(response.headers["location"])
        assert "was revoked" in page.text

    def test_an_expired_session_is_sent_back_to_sign_in(
        self, api: Api, app: FastAPI, console: ConsoleFor
    ) -> None:
        browser = console("editor")
        with write_session(app.state.engine) as session:
            for row in session.exec(select(ConsoleSession)).all():
                row.expires_at = utcnow() - timedelta(seconds=1)
                session.add(row)
            session.commit()
        assert browser.get("/ui").headers["location"].startswith("/ui/signin?ended=expired")

    def test_a_forged_cookie_is_not_a_session(self, api: Api) -> None:
        browser = Console(api.client)
        browser.jar = {SESSION_COOKIE: "InRva2VuIg.forged.signature"}
        assert browser.get("/ui").headers["location"].startswith("/ui/signin?ended=invalid")


class TestRollback:
    def test_one_click_rollback_with_a_reason_changes_production(
        self, shipped: Api, console: ConsoleFor
    ) -> None:
        browser = console("approver")
        page = browser.get("/ui/bundles/support-bot")
        assert 'data-open="rollback-dialog"' in page.text and "Roll back now" in page.text
        response = browser.post("/ui/bundles/support-bot/rollback", csrf=browser.csrf(), reason="bad tone")
        assert response.headers["location"] == "/ui/bundles/support-bot"
        after = browser.get("/ui/bundles/support-bot")
        assert "Rolled back support-bot: production changed." in after.text
        assert "<strong>support-bot@1</strong>" in after.text
        assert active_version(shipped) == "support-bot@1"
        history = shipped.client.get(
            "/api/bundles/support-bot/history", headers=shipped.keys["runtime"]
        ).json()
        assert (history[0]["kind"], history[0]["actor"], history[0]["reason"]) == (
            "rollback",
            "approver",
            "bad tone",
        )

    def test_a_rollback_without_a_reason_changes_nothing(self, shipped: Api, console: ConsoleFor) -> None:
        browser = console("approver")
        browser.post("/ui/bundles/support-bot/rollback", csrf=browser.csrf(), reason="  ")
        assert "A rollback needs a reason." in browser.get("/ui/bundles/support-bot").text
        assert active_version(shipped) == "support-bot@2"

    @pytest.mark.parametrize("token", ["", "forged"])
    def test_a_missing_or_wrong_csrf_token_is_403_and_nothing_changes(
        self, shipped: Api, console: ConsoleFor, token: str
    ) -> None:
        browser = console("approver")
        response = browser.post("/ui/bundles/support-bot/rollback", csrf=token, reason="x")
        assert response.status_code == 403 and "security token" in response.text
        assert active_version(shipped) == "support-bot@2"

    def test_an_editor_sees_no_rollback_button_and_a_forged_post_is_refused(
        self, shipped: Api, console: ConsoleFor
    ) -> None:
        browser = console("editor")
        page = browser.get("/ui/bundles/support-bot")
        assert page.status_code == 200 and "rollback-dialog" not in page.text
        response = browser.post("/ui/bundles/support-bot/rollback", csrf=browser.csrf(), reason="sneaky")
        assert response.status_code == 403 and "approver role" in response.text
        assert active_version(shipped) == "support-bot@2"

    def test_a_refused_rollback_says_why_in_one_line(self, api: Api, console: ConsoleFor) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        browser = console("approver")
        browser.post("/ui/bundles/support-bot/rollback", csrf=browser.csrf(), reason="try")
        assert "no earlier production version" in browser.get("/ui/bundles/support-bot").text


class TestPages:
    def test_overview_shows_production_last_change_and_filters(
        self, shipped: Api, console: ConsoleFor
    ) -> None:
        shipped.create_bundle("faq-bot")
        browser = console("runtime")
        page = browser.get("/ui").text
        assert "support-bot@2" in page and "by approver2" in page and "faq-bot" in page
        filtered = browser.get("/ui?q=faq").text
        assert "faq-bot" in filtered and "support-bot@2" not in filtered

    def test_version_page_renders_the_prompt_with_typed_values(
        self, shipped: Api, console: ConsoleFor
    ) -> None:
        browser = console("runtime")
        page = browser.get("/ui/bundles/support-bot/versions/1?render=1&var.tone=warm&var.company=Initech")
        assert "Initech&#39;s support agent. Answer in a warm tone." in page.text
        assert page.text.count("per hour, last 24 h") >= 3  # requests, error rate and latency trends
        missing = browser.get("/ui/bundles/support-bot/versions/1?render=1&var.company=Initech")
        assert "tone" in missing.text and "flash-error" in missing.text

    def test_diff_shows_changed_params_and_prompt_lines(self, shipped: Api, console: ConsoleFor) -> None:
        page = console("runtime").get("/ui/bundles/support-bot/diff?a=1&b=2").text
        assert "params.temperature" in page and "0.9" in page
        assert 'class="del"' in page and 'class="ins"' in page and "Be brief." in page

    @pytest.mark.parametrize(
        "path",
        ["/ui/bundles/nope", "/ui/bundles/support-bot/versions/99", "/ui/experiments/exp_0000000000000000"],
    )
    def test_missing_things_are_404_pages(self, shipped: Api, console: ConsoleFor, path: str) -> None:
        response = console("runtime").get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")

    def test_user_text_is_escaped_everywhere(self, api: Api, console: ConsoleFor) -> None:
        created = api.client.post(
            "/api/bundles", json={"name": "support-bot", "description": XSS}, headers=api.keys["editor"]
        )
        assert created.status_code == 201
        api.publish(message=XSS, system_prompt=f"Hi {XSS}", variables={})
        api.to_production(1)
        api.publish(message="two", system_prompt="Hi", variables={})
        api.to_production(2)
        browser = console("approver")
        browser.post("/ui/bundles/support-bot/rollback", csrf=browser.csrf(), reason=XSS)
        for path in (
            "/ui",
            "/ui/bundles/support-bot",
            "/ui/bundles/support-bot/versions/1",
            "/ui/bundles/support-bot/diff?a=1&b=2",
        ):
            page = browser.get(path).text
            assert XSS not in page, path
        assert "&lt;script&gt;" in browser.get("/ui/bundles/support-bot").text


class TestExperimentPage:
    def test_results_with_a_chart_and_the_decision(self, api: Api, console: ConsoleFor) -> None:
        candidate_in_staging(api)
        experiment = started(api, seed="console")
        events = [event(experiment, f"s-{i}", outcomes={"thumbs_up": i % 2}) for i in range(60)]
        assert api.client.post("/api/events", json=events, headers=api.keys["runtime"]).status_code == 202
        browser = console("editor")
        page = browser.get(f"/ui/experiments/{experiment['id']}")
        assert page.status_code == 200
        assert page.text.count("<svg") >= 3 and 'role="img"' in page.text
        assert "Decision" in page.text and "subject" in page.text
        live = browser.get(f"/ui/experiments/{experiment['id']}/results")
        assert live.status_code == 200 and "<html" not in live.text and "<svg" in live.text
        paused = browser.post(f"/ui/experiments/{experiment['id']}/pause", csrf=browser.csrf())
        assert paused.status_code == 303
        assert "Experiment paused." in browser.get(f"/ui/experiments/{experiment['id']}").text


class TestKeys:
    def test_only_admins_manage_keys(self, api: Api, console: ConsoleFor) -> None:
        assert console("approver").get("/ui/keys").status_code == 403

    def test_create_shows_the_secret_once_and_revoke_works(self, api: Api, console: ConsoleFor) -> None:
        browser = console("admin")
        created = browser.post("/ui/keys", csrf=browser.csrf(), name="ci-bot", role="editor")
        assert created.status_code == 201
        shown = re.search(r'id="new-secret" class="select">(cv_[^<]+)<', created.text)
        assert shown, created.text
        assert (
            api.client.get("/api/bundles", headers={"Authorization": f"Bearer {shown.group(1)}"}).status_code
            == 200
        )
        listing = browser.get("/ui/keys").text
        assert "ci-bot" in listing and shown.group(1) not in listing
        key_id = next(
            k["id"]
            for k in api.client.get("/api/keys", headers=api.keys["admin"]).json()
            if k["name"] == "ci-bot"
        )
        assert browser.post(f"/ui/keys/{key_id}/revoke", csrf=browser.csrf()).status_code == 303
        assert (
            api.client.get("/api/bundles", headers={"Authorization": f"Bearer {shown.group(1)}"}).status_code
            == 401
        )


class TestApiDocs:
    def test_docs_and_schema_need_a_key_or_a_session(self, api: Api, console: ConsoleFor) -> None:
        stranger = Console(api.client)
        assert stranger.get("/openapi.json").status_code == 401
        assert stranger.get("/docs").status_code == 303
        assert api.client.get("/openapi.json", headers=api.keys["runtime"]).status_code == 200
        browser = console("runtime")
        assert browser.get("/openapi.json").json()["info"]["title"] == "chatver"
        assert browser.get("/docs").status_code == 200 and browser.get("/redoc").status_code == 200

    def test_static_assets_are_public(self, api: Api) -> None:
        response = Console(api.client).get("/ui/static/console.css")
        assert response.status_code == 200 and "text/css" in response.headers["content-type"]


class TestReviewedEdges:
    @pytest.mark.parametrize(
        "path",
        [
            "/ui/signout",
            "/ui/keys",
            "/ui/keys/key_0000000000000000/revoke",
            "/ui/bundles/support-bot/versions/2/stage",
            "/ui/bundles/support-bot/versions/2/approve",
            "/ui/experiments/exp_0000000000000000/start",
            "/ui/rollouts/ro_0000000000000000/stop",
        ],
    )
    def test_every_form_needs_its_csrf_token(self, shipped: Api, console: ConsoleFor, path: str) -> None:
        response = console("admin").post(path, csrf="", reason="x", name="k", role="runtime", to="archived")
        assert response.status_code == 403 and "security token" in response.text

    @pytest.mark.parametrize(
        ("path", "data"),
        [
            ("/ui/bundles/support-bot/versions/1/stage", {"to": "archived"}),
            ("/ui/bundles/support-bot/versions/1/approve", {}),
            ("/ui/keys", {"name": "sneaky", "role": "admin"}),
            ("/ui/bundles/support-bot/rollback", {"reason": "x"}),
        ],
    )
    def test_a_runtime_key_cannot_act(
        self, shipped: Api, console: ConsoleFor, path: str, data: dict[str, str]
    ) -> None:
        browser = console("runtime")
        response = browser.post(path, csrf=browser.csrf(), **data)
        assert response.status_code == 403
        assert active_version(shipped) == "support-bot@2"
        keys = shipped.client.get("/api/keys", headers=shipped.keys["admin"]).json()
        assert "sneaky" not in {k["name"] for k in keys}

    def test_database_trouble_under_the_console_is_a_page(
        self, api: Api, console: ConsoleFor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy.exc import OperationalError

        from app.auth import service as auth_service

        def busy(**_: object) -> None:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

        browser = console("admin")
        token = browser.csrf()
        monkeypatch.setattr(auth_service, "issue_key", busy)
        response = browser.post("/ui/keys", csrf=token, name="later", role="runtime")
        assert response.status_code == 503
        assert (
            response.headers["content-type"].startswith("text/html") and "database is busy" in response.text
        )

    def test_a_forged_winner_is_refused_with_a_message(self, api: Api, console: ConsoleFor) -> None:
        candidate_in_staging(api)
        experiment = started(api, seed="winner")
        browser = console("editor")
        response = browser.post(
            f"/ui/experiments/{experiment['id']}/stop", csrf=browser.csrf(), winner="BAD NAME"
        )
        assert response.status_code == 303
        page = browser.get(f"/ui/experiments/{experiment['id']}").text
        assert "winner" in page and "flash-error" in page and ">running<" in page

    def test_a_built_in_primary_metric_is_charted_per_arm(self, api: Api, console: ConsoleFor) -> None:
        candidate_in_staging(api)
        experiment = started(api, seed="latency", primary_metric="latency_ms", name=XSS)
        events = [event(experiment, f"s-{i}", latency_ms=700.0 + i) for i in range(60)]
        assert api.client.post("/api/events", json=events, headers=api.keys["runtime"]).status_code == 202
        page = console("runtime").get(f"/ui/experiments/{experiment['id']}").text
        assert "latency_ms per arm" in page and "control: no data" not in page
        assert XSS not in page and "&lt;script&gt;" in page

    def test_every_earlier_production_version_is_a_rollback_target(
        self, api: Api, console: ConsoleFor
    ) -> None:
        api.create_bundle()
        for number in range(1, 15):  # 14 releases: more history than the page lists
            api.publish(message=f"release {number}", params={"temperature": number / 20})
            api.to_production(number)
        page = console("approver").get("/ui/bundles/support-bot").text
        options = re.findall(r'<option value="(\d+)">support-bot@\d+</option>', page)
        assert options == [str(n) for n in range(13, 0, -1)]

    def test_a_stopped_rollout_has_no_current_step(self, api: Api, console: ConsoleFor) -> None:
        candidate_in_staging(api)
        api.move(2, "validation")
        assert api.approve(2).status_code == 201
        created = api.client.post(
            "/api/bundles/support-bot/rollouts",
            json={"version": 2, "guardrails": [{"metric": "error_rate", "max_regression": 0.02}]},
            headers=api.keys["approver2"],
        ).json()
        browser = console("editor")
        browser.post(f"/ui/rollouts/{created['id']}/stop", csrf=browser.csrf(), reason=XSS)
        page = browser.get(f"/ui/rollouts/{created['id']}").text
        chart = page.split("<svg", 1)[1].split("</svg>", 1)[0]
        assert ">stopped<" in page and "cv-current" not in chart and ", current" not in chart
        assert XSS not in page

    def test_sign_in_returns_to_the_page_with_its_query(self, shipped: Api) -> None:
        browser = Console(shipped.client)
        location = browser.get("/ui/bundles/support-bot/versions/1?render=1&var.tone=warm").headers[
            "location"
        ]
        assert "next=/ui/bundles/support-bot/versions/1%3Frender%3D1%26var.tone%3Dwarm" in location
        live = browser.get("/ui/experiments/exp_0000000000000000/results").headers["location"]
        assert live.endswith("next=/ui/experiments/exp_0000000000000000")

    def test_pages_forbid_framing_and_foreign_scripts(self, shipped: Api, console: ConsoleFor) -> None:
        response = console("runtime").get("/ui")
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

    def test_api_docs_load_nothing_from_the_network(self, shipped: Api) -> None:
        for path in ("/docs", "/redoc"):
            html = shipped.client.get(path, headers=shipped.keys["runtime"]).text
            assert "/ui/static/vendor/" in html and "https://" not in html.replace("https://github", "")
        assert (
            Console(shipped.client).get("/ui/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code
            == 200
        )
