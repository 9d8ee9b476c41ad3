"""The console in a real browser (Playwright driving the system Chromium, headless): sign in, open a
bundle, diff two versions, roll back with a reason, roles, the experiment chart, keyboard use, phone
width and no layout shift on refresh. Screenshots of the main pages go to docs/screenshots/."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, _need
from tests.experiments.test_api_experiments import started
from tests.experiments.test_subject_results import event
from tests.llm import GATEWAY_PARAMS
from tests.ui.conftest import active_version, secret

CHROMIUM = os.environ.get("CHATVER_TEST_CHROMIUM")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def database_url(sqlite_template: str, tmp_path: Path) -> str:
    """One database is enough here: the pages are the same code on both (tests/ui/test_console.py
    runs on PostgreSQL too)."""
    path = tmp_path / "browser.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not CHROMIUM:
        _need("Chromium", "CHATVER_TEST_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def story(api: Api) -> dict[str, Any]:
    """support-bot: v1 then v2 in production, an experiment v2 vs v3 with traffic; faq-bot: a rollout."""
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS, message="first prompt")
    api.to_production(1)
    api.publish(
        params={**GATEWAY_PARAMS, "temperature": 0.4},
        system_prompt="You are {{ company }}'s support agent.\nAnswer in a {{ tone }} tone.\nBe brief.",
        message="brief answers",
    )
    api.to_production(2)
    api.publish(
        params={**GATEWAY_PARAMS, "temperature": 0.9},
        system_prompt=(
            "You are {{ company }}'s friendly agent.\nAnswer in a {{ tone }} tone.\nOffer next steps."
        ),
        message="friendlier, with next steps",
    )
    api.move(3, "staging")
    arms = [{"name": "control", "version": 2, "weight": 50}, {"name": "friendly", "version": 3, "weight": 50}]
    experiment = started(api, seed="browser", arms=arms)
    rng = random.Random(9)
    events = []
    for i in range(400):
        subject = f"s-{i}"
        index = 0 if event(experiment, subject)["version_id"].endswith("@2") else 1
        for _ in range(rng.randint(1, 4)):
            events.append(
                event(
                    experiment,
                    subject,
                    latency_ms=rng.lognormvariate(6.6 + 0.05 * index, 0.4),
                    outcomes={"thumbs_up": int(rng.random() < (0.32 if index == 0 else 0.42))},
                )
            )
    for start in range(0, len(events), 1000):
        response = api.client.post(
            "/api/events", json=events[start : start + 1000], headers=api.keys["runtime"]
        )
        assert response.status_code == 202, response.text

    api.create_bundle("faq-bot")
    api.publish("faq-bot", params=GATEWAY_PARAMS, message="faq v1")
    api.to_production(1, "faq-bot")
    api.publish("faq-bot", params={**GATEWAY_PARAMS, "temperature": 0.3}, message="faq v2")
    api.move(2, "staging", "faq-bot")
    api.move(2, "validation", "faq-bot")
    assert api.approve(2, "faq-bot").status_code == 201
    rollout = api.client.post(
        "/api/bundles/faq-bot/rollouts",
        json={
            "version": 2,
            "steps": [10, 50, 100],
            "guardrails": [{"metric": "error_rate", "max_regression": 0.02}],
        },
        headers=api.keys["approver2"],
    )
    assert rollout.status_code == 201, rollout.text
    return {"experiment": experiment, "rollout": rollout.json()}


def sign_in(browser: Any, base: str, key: str, viewport: dict[str, int] = DESKTOP) -> Any:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(f"{base}/ui")
    assert "/ui/signin" in page.url
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui")
    return page


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_on_call_story_in_a_browser(
    chromium: Any, server_url: str, api: Api, story: dict[str, Any]
) -> None:
    page = sign_in(chromium, server_url, secret(api, "approver"))
    assert page.get_by_role("cell", name="support-bot@2").is_visible()
    shot(page, "bundles")

    # The experiment: charts with interval bars, the decision, and a refresh that does not move the page.
    page.goto(f"{server_url}/ui/experiments/{story['experiment']['id']}")
    charts = page.locator("#live svg[role=img]")
    assert charts.count() >= 3
    assert "thumbs_up per arm" in (charts.first.get_attribute("aria-label") or "")
    below = page.locator("#exp-actions-h")
    before = below.bounding_box()
    counts = page.locator("#srm-h + .chart").inner_html()
    # New traffic arrives; the page refreshes itself with different numbers.
    more = [event(story["experiment"], f"late-{i}", latency_ms=900.0) for i in range(150)]
    assert api.client.post("/api/events", json=more, headers=api.keys["runtime"]).status_code == 202
    page.evaluate("document.getElementById('live').refreshNow()")
    page.wait_for_function("document.getElementById('live').dataset.refreshedAt !== undefined")
    assert page.locator("#srm-h + .chart").inner_html() != counts  # the numbers did change
    assert below.bounding_box() == before  # and what follows the results did not move
    shot(page, "experiment")

    page.goto(f"{server_url}/ui/rollouts/{story['rollout']['id']}")
    assert page.locator("svg[role=img]").count() == 1
    assert page.get_by_text("Step 1 of 3:").is_visible()
    shot(page, "rollout")

    # A bundle, then a diff of two versions.
    page.goto(f"{server_url}/ui")
    page.get_by_role("link", name="support-bot").click()
    page.wait_for_url(f"{server_url}/ui/bundles/support-bot")
    shot(page, "bundle")
    page.get_by_label("Compare").select_option("1")
    page.get_by_label("with").select_option("2")
    page.get_by_role("button", name="Diff").click()
    page.wait_for_url("**/diff?a=1&b=2")
    assert page.locator("table.diff td.ins", has_text="Be brief.").is_visible()
    assert page.get_by_role("rowheader", name="params.temperature").is_visible()
    shot(page, "diff")

    page.goto(f"{server_url}/ui/bundles/support-bot/versions/2")
    page.get_by_label("tone").fill("warm")
    page.get_by_role("button", name="Render").click()
    assert page.locator("pre.prompt").nth(1).inner_text().startswith("You are Acme's support agent.")
    shot(page, "version")

    # Rollback with the keyboard only: open the dialog, type the reason, confirm.
    page.goto(f"{server_url}/ui/bundles/support-bot")
    page.get_by_role("button", name="Roll back…").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    assert dialog.is_visible()
    assert page.evaluate("document.activeElement.id") == "rollback-to"
    page.get_by_label("Reason (required, kept in the audit history)").fill(
        "tone regression reported by support"
    )
    dialog.get_by_role("button", name="Roll back now").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("Rolled back support-bot: production changed.").is_visible()
    assert page.locator("section", has_text="Serving now").get_by_text("support-bot@1").first.is_visible()
    assert page.get_by_role("cell", name="tone regression reported by support").first.is_visible()
    assert active_version(api) == "support-bot@1"


def test_an_editor_sees_no_rollback_and_a_forged_post_is_refused(
    chromium: Any, server_url: str, api: Api, story: dict[str, Any]
) -> None:
    page = sign_in(chromium, server_url, secret(api, "editor"))
    page.goto(f"{server_url}/ui/bundles/support-bot")
    assert page.get_by_role("button", name="Roll back…").count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    forged = page.request.post(
        f"{server_url}/ui/bundles/support-bot/rollback",
        form={"csrf": token, "reason": "I am not allowed to"},
        max_redirects=0,
    )
    assert forged.status == 403 and "approver role" in forged.text()
    bundle = api.client.get("/api/bundles/support-bot", headers=api.keys["runtime"]).json()
    assert bundle["production"] == "support-bot@2" and bundle["experiment"] is not None  # untouched


def test_readable_at_phone_width(chromium: Any, server_url: str, api: Api, story: dict[str, Any]) -> None:
    page = sign_in(chromium, server_url, secret(api, "approver"), viewport=PHONE)
    for path in ("/ui", "/ui/bundles/support-bot", f"/ui/experiments/{story['experiment']['id']}"):
        page.goto(f"{server_url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(
            """[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
               window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)"""
        )
        assert overflow <= 0, (path, overflow, wide)  # wide tables scroll inside their box, not the page
    shot(page, "phone-experiment")


def test_every_field_has_a_label(chromium: Any, server_url: str, api: Api, story: dict[str, Any]) -> None:
    page = sign_in(chromium, server_url, secret(api, "admin"))
    for path in (
        "/ui",
        "/ui/bundles/support-bot",
        "/ui/bundles/support-bot/versions/3",
        "/ui/keys",
        f"/ui/experiments/{story['experiment']['id']}",
    ):
        page.goto(f"{server_url}{path}")
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
               .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
               .map(el => el.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
    page.goto(f"{server_url}/ui/keys")
    shot(page, "keys")
