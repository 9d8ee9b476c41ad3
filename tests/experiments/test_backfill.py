"""The 0004 migration's backfill sums existing events and outcomes into exactly what incremental
maintenance produces: results computed before and after rebuilding the aggregates are identical."""

from __future__ import annotations

import random
from typing import Any

from alembic import command

from app.migrate import alembic_config, upgrade_database
from tests.conftest import Api
from tests.experiments.test_api_experiments import started, two  # noqa: F401  (fixture)
from tests.experiments.test_results import results
from tests.experiments.test_subject_results import event


def test_rebuilt_aggregates_give_the_same_results(two: Api, database_url: str) -> None:  # noqa: F811
    experiment = started(
        two,
        seed="backfill",
        guardrails=[
            {"metric": "latency_ms.p95", "max_regression": 0.2},
            {"metric": "error_rate", "max_regression": 0.02},
        ],
    )
    rng = random.Random(8)
    events: list[dict[str, Any]] = []
    for i in range(120):
        for _ in range(rng.randint(1, 6)):
            events.append(
                event(
                    experiment,
                    f"s-{i}",
                    latency_ms=rng.lognormvariate(6.5, 0.5),
                    cost=rng.uniform(0, 0.001),
                    error="timeout" if rng.random() < 0.05 else None,
                    outcomes={"thumbs_up": int(rng.random() < 0.4)},
                )
            )
    anonymous = [event(experiment, "x", arm=i % 2, latency_ms=900.0) for i in range(20)]
    for item in anonymous:
        del item["subject"]
    response = two.client.post("/api/events", json=events + anonymous, headers=two.keys["runtime"])
    assert response.status_code == 202, response.text
    # Late feedback that replaces a value: the aggregates must hold the new one, not both.
    for request_id in response.json()["request_ids"][:30]:
        replaced = two.client.post(
            "/api/feedback",
            json={"request_id": request_id, "name": "thumbs_up", "value": 0},
            headers=two.keys["runtime"],
        )
        assert replaced.status_code == 202, replaced.text
    before = results(two, experiment)
    assert before["arms"][0]["subjects"] + before["arms"][1]["subjects"] == 140

    command.downgrade(alembic_config(database_url), "0003_rollouts")
    upgrade_database(database_url)

    assert results(two, experiment) == before
