"""Results with the subject as the unit: repeated requests, wrong-arm serving, percentile guardrails,
CUPED from the production pre-period, and feedback that replaces a value."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import respx

from app.experiments.assignment import Arm, assign_arm
from tests.conftest import Api
from tests.experiments.test_api_experiments import started, two  # noqa: F401  (fixture)
from tests.experiments.test_results import report, results
from tests.llm import GATEWAY_PARAMS, UPSTREAM, chat, flush_events, metrics_of, ok


def assigned(experiment: dict[str, Any], subject: str) -> int:
    arms = [Arm(a["name"], a["weight"]) for a in experiment["arms"]]
    return assign_arm(arms=arms, seed=experiment["seed"], subject=subject)[0]


def event(experiment: dict[str, Any], subject: str, arm: int | None = None, **extra: Any) -> dict[str, Any]:
    index = assigned(experiment, subject) if arm is None else arm
    return {
        "version_id": experiment["arms"][index]["version_id"],
        "experiment": experiment["id"],
        "subject": subject,
        "latency_ms": 800,
        **extra,
    }


class TestTheSubjectIsTheUnit:
    def test_a_subject_with_many_requests_counts_once(self, two: Api) -> None:  # noqa: F811
        experiment = started(two, seed="units")
        events = [event(experiment, f"s-{i}", outcomes={"thumbs_up": 1}) for i in range(40)]
        events += [event(experiment, "chatty", outcomes={"thumbs_up": 0}) for _ in range(30)]
        report(two, experiment, events)
        body = results(two, experiment)
        assert body["analysis"]["unit"] == "subject"
        assert sum(arm["subjects"] for arm in body["arms"]) == 41
        assert sum(arm["requests"] for arm in body["arms"]) == 70
        chatty = body["arms"][assigned(experiment, "chatty")]
        thumbs = chatty["metrics"]["thumbs_up"]
        assert thumbs["n"] == chatty["subjects"]
        assert thumbs["observations"] == chatty["subjects"] - 1 + 30
        # Per outcome the chatty subject weighs 30 ratings; per subject it is one subject of k.
        k = chatty["subjects"]
        assert thumbs["mean"] == pytest.approx((k - 1) / (k - 1 + 30), abs=1e-6)
        assert thumbs["per_subject"]["mean"] == pytest.approx((k - 1) / k, abs=1e-6)
        assert chatty["requests_per_subject"] == pytest.approx(
            chatty["requests"] / chatty["subjects"], abs=1e-4
        )

    def test_requests_without_a_subject_are_each_their_own_unit(self, two: Api) -> None:  # noqa: F811
        experiment = started(two, seed="units")
        events = [event(experiment, "x", arm=i % 2) for i in range(10)]
        for item in events:
            del item["subject"]
        report(two, experiment, events)
        body = results(two, experiment)
        assert [arm["subjects"] for arm in body["arms"]] == [5, 5]
        assert body["srm"]["crossover"]["subjects"] == 0


class TestWrongArmServing:
    def test_a_runtime_serving_everyone_the_control_is_flagged(self, two: Api) -> None:  # noqa: F811
        experiment = started(two, seed="srm")
        report(two, experiment, [event(experiment, f"s-{i}", arm=0) for i in range(400)])
        body = results(two, experiment)
        srm = body["srm"]
        assert srm["flag"]
        assert srm["assigned"]["unit"].startswith("subject") and not srm["assigned"]["flag"]
        assert srm["exposure"]["flag"] and srm["exposure"]["counts"]["treatment"] == 0
        assert srm["crossover"]["served_other_arm"] == srm["assigned"]["counts"]["treatment"] > 150
        assert srm["crossover"]["units"] == srm["crossover"]["served_other_arm"]
        assert srm["crossover"]["flag"]
        assert body["decision"].startswith("SRM: results not trustworthy")

    def test_subjects_seen_in_both_arms_are_counted_once_and_reported(self, two: Api) -> None:  # noqa: F811
        experiment = started(two, seed="srm")
        events = [event(experiment, f"s-{i}") for i in range(300)]
        events += [event(experiment, f"s-{i}", arm=1 - assigned(experiment, f"s-{i}")) for i in range(30)]
        report(two, experiment, events)
        srm = results(two, experiment)["srm"]
        assert sum(srm["assigned"]["counts"].values()) == 300  # each subject once, in its assigned arm
        assert sum(srm["exposure"]["counts"].values()) == 330
        assert srm["crossover"]["subjects"] == 30 and srm["crossover"]["share"] == pytest.approx(0.1)
        # Each of the 30 was also served an arm it was not assigned; still 30 units, not 60.
        assert srm["crossover"]["served_other_arm"] == 30
        assert (srm["crossover"]["units"], srm["crossover"]["units_share"]) == (30, pytest.approx(0.1))
        assert srm["crossover"]["flag"] and srm["flag"]
        assert "30 subjects, 10.0%, were served more than one arm" in results(two, experiment)["decision"]

    def test_a_crossover_share_just_under_the_limit_is_not_flagged(self, two: Api) -> None:  # noqa: F811
        # 1,000 subjects, 9 served both arms: 0.9% < 1%. Counted twice (the old bug) it was 1.8%.
        experiment = started(two, seed="srm")
        events = [event(experiment, f"s-{i}") for i in range(1000)]
        events += [event(experiment, f"s-{i}", arm=1 - assigned(experiment, f"s-{i}")) for i in range(9)]
        report(two, experiment, events)
        crossover = results(two, experiment)["srm"]["crossover"]
        assert (crossover["units"], crossover["units_share"]) == (9, pytest.approx(0.009))
        assert not crossover["flag"]


class TestPercentileGuardrails:
    def _latencies(self, two: Api, slowdown: float) -> dict[str, Any]:  # noqa: F811
        experiment = started(
            two, seed="p95", guardrails=[{"metric": "latency_ms.p95", "max_regression": 0.1}]
        )
        rng = random.Random(41)
        events = []
        for i in range(8000):
            subject = f"s-{i}"
            factor = slowdown if assigned(experiment, subject) == 1 else 1.0
            events.append(event(experiment, subject, latency_ms=rng.lognormvariate(6.5, 0.5) * factor))
        report(two, experiment, events)
        return results(two, experiment)

    def test_a_slower_p95_fails_on_the_percentile(self, two: Api) -> None:  # noqa: F811
        body = self._latencies(two, 1.5)
        rail = body["guardrails"][0]
        assert rail["metric"] == "latency_ms.p95" and rail["status"] == "failing"
        assert rail["regression"] == pytest.approx(0.5, abs=0.08)
        assert 0.1 < rail["bound"] < rail["regression"] < rail["upper"]
        control, treatment = body["arms"]
        assert treatment["latency_ms"]["p95"] / control["latency_ms"]["p95"] == pytest.approx(1.5, abs=0.08)
        assert body["decision"].startswith("treatment fails its guardrail: latency_ms.p95 regressed by +")

    def test_the_same_p95_passes(self, two: Api) -> None:  # noqa: F811
        rail = self._latencies(two, 1.0)["guardrails"][0]
        assert rail["status"] == "ok" and rail["bound"] < 0 < rail["upper"]


class TestCuped:
    def test_the_production_pre_period_shrinks_the_interval(self, two: Api) -> None:  # noqa: F811
        rng = random.Random(43)
        propensity = {f"s-{i}": rng.betavariate(2, 3) for i in range(1200)}
        pre = []
        for subject, p in propensity.items():
            for _ in range(4):
                pre.append(
                    {
                        "version_id": "support-bot@1",
                        "subject": subject,
                        "outcomes": {"score": p * 10 + rng.gauss(0, 1)},
                    }
                )
        report(two, {}, pre)
        experiment = started(two, seed="cuped", primary_metric="score")
        events = [
            event(experiment, subject, outcomes={"score": p * 10 + rng.gauss(0, 1)})
            for subject, p in propensity.items()
        ]
        report(two, experiment, events)
        lift = results(two, experiment)["arms"][1]["vs_control"]["score"]
        assert lift["cuped_variance_reduction"] is not None and lift["cuped_variance_reduction"] > 0.3
        assert lift["per_subject"]["cuped_variance_reduction"] > 0.3

    def test_without_a_pre_period_nothing_is_adjusted(self, two: Api) -> None:  # noqa: F811
        experiment = started(two, seed="cuped")
        report(
            two, experiment, [event(experiment, f"s-{i}", outcomes={"thumbs_up": i % 2}) for i in range(200)]
        )
        lift = results(two, experiment)["arms"][1]["vs_control"]["thumbs_up"]
        assert lift["cuped_variance_reduction"] is None and lift["lift"] is not None


class TestFamilies:
    def test_three_arms_are_decided_with_holm(self, two: Api) -> None:  # noqa: F811
        two.publish(params={**GATEWAY_PARAMS, "temperature": 0.5})
        two.move(3, "staging")
        arms = [
            {"name": "control", "version": 1, "weight": 1},
            {"name": "b", "version": 2, "weight": 1},
            {"name": "c", "version": 3, "weight": 1},
        ]
        experiment = started(two, seed="holm", arms=arms)
        rng = random.Random(4)
        rates = {0: 0.3, 1: 0.36, 2: 0.5}  # b a little better, c clearly better
        report(
            two,
            experiment,
            [
                event(
                    experiment,
                    f"s-{i}",
                    outcomes={"thumbs_up": int(rng.random() < rates[assigned(experiment, f"s-{i}")])},
                )
                for i in range(1500)
            ],
        )
        body = results(two, experiment)
        assert body["analysis"]["decision_family"].startswith("Holm over 2 treatment arm")
        assert body["analysis"]["guardrail_alpha"] == pytest.approx(0.05 / 2)
        b, c = (arm["vs_control"]["thumbs_up"] for arm in body["arms"][1:])
        raw = {"b": b["p_value_always_valid"], "c": c["p_value_always_valid"]}
        assert raw["c"] < raw["b"] < 1  # c is the stronger evidence
        # Holm step-down: the smallest p-value is multiplied by 2, the next one by 1, and the adjusted
        # values never decrease along the order.
        assert c["p_value_adjusted"] == pytest.approx(min(1.0, 2 * raw["c"]), rel=1e-5)
        assert b["p_value_adjusted"] == pytest.approx(max(c["p_value_adjusted"], raw["b"]), rel=1e-5)
        assert c["p_value_adjusted"] < 0.05 and body["decision"].startswith("c wins on thumbs_up")


class TestFeedback:
    def test_replaced_feedback_is_counted_once_with_the_new_value(
        self,
        two: Api,  # noqa: F811
        upstream: respx.MockRouter,
    ) -> None:
        upstream.post(UPSTREAM).mock(return_value=ok())
        experiment = started(two, seed="feedback")
        ids = [chat(two, headers={"x-chatver-subject": f"f-{i}"}).json()["id"] for i in range(20)]
        flush_events(two)
        for value in (0, 1, 1):
            for request_id in ids:
                response = two.client.post(
                    "/api/feedback",
                    json={"request_id": request_id, "name": "thumbs_up", "value": value},
                    headers=two.keys["runtime"],
                )
                assert response.status_code == 202
        body = results(two, experiment)
        assert sum(arm["metrics"]["thumbs_up"]["observations"] for arm in body["arms"]) == 20
        assert all(arm["metrics"]["thumbs_up"]["mean"] in (None, 1.0) for arm in body["arms"])

    def test_concurrent_replacements_leave_exactly_the_last_stored_value(
        self,
        two: Api,  # noqa: F811
        server_url: str,
    ) -> None:
        # 16 clients replace the same rating at once; the per-subject sums must hold one rating
        # with the value the outcome table kept, never the sum of several (a lost update).
        experiment = started(two, seed="race")
        stored = two.client.post(
            "/api/events", json=event(experiment, "racer"), headers=two.keys["runtime"]
        ).json()["request_id"]

        def rate(value: int) -> int:
            with httpx.Client(base_url=server_url, headers=two.keys["runtime"], timeout=30) as http:
                body = {"request_id": stored, "name": "thumbs_up", "value": value}
                return http.post("/api/feedback", json=body).status_code

        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(rate, [i % 2 for i in range(64)])) == {202}
        body = results(two, experiment)
        arm = body["arms"][assigned(experiment, "racer")]["metrics"]["thumbs_up"]
        version = experiment["arms"][assigned(experiment, "racer")]["version_id"].rpartition("@")[2]
        kept = metrics_of(two, int(version))["outcomes"]["thumbs_up"]
        assert (arm["observations"], kept["count"]) == (1, 1)
        assert arm["mean"] == kept["mean"]

    @pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
    def test_non_finite_outcomes_are_refused(self, two: Api, value: str) -> None:  # noqa: F811
        experiment = started(two, seed="nan")
        payload = (
            f'{{"version_id": "{experiment["arms"][0]["version_id"]}", "experiment": "{experiment["id"]}", '
            f'"subject": "s", "outcomes": {{"thumbs_up": {value}}}}}'
        )
        response = two.client.post(
            "/api/events",
            content=payload,
            headers={**two.keys["runtime"], "content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "outcomes.thumbs_up"
