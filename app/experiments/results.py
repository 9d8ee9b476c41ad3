"""Per-arm counts and metrics of an experiment, from the events each arm's version served."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.bundles.models import Bundle
from app.bundles.service import version_id
from app.events import repository as events_repo
from app.events.aggregates import mean_ci95, percentile, rounded
from app.experiments.models import Experiment


def arm_results(session: Session, experiment: Experiment, bundle: Bundle) -> list[dict[str, Any]]:
    """Exposure and outcomes per arm, counted under the version that actually served."""
    arms: list[dict[str, Any]] = []
    for arm in experiment.arms:
        served = version_id(bundle.name, int(arm["version"]))
        totals = events_repo.experiment_arm_totals(session, experiment.id, served)
        latency, _ = events_repo.latencies(session, served, None, experiment_id=experiment.id)
        requests = totals["requests"]
        metrics: dict[str, Any] = {}
        outcome_stats = events_repo.outcome_stats(session, served, None, experiment_id=experiment.id)
        for name, (n, total, squares) in sorted(outcome_stats.items()):
            mean, ci = mean_ci95(n, total, squares)
            metrics[name] = {
                "n": n,
                "mean": rounded(mean, 6),
                "ci95": [rounded(v, 6) for v in ci] if ci else None,
            }
        arms.append(
            {
                "name": arm["name"],
                "version_id": served,
                "weight": arm["weight"],
                "subjects": totals["subjects"],
                "requests": requests,
                "errors": totals["errors"],
                "error_rate": rounded(totals["errors"] / requests, 6) if requests else None,
                "latency_ms": {
                    "p50": rounded(percentile(latency, 50), 1),
                    "p95": rounded(percentile(latency, 95), 1),
                },
                "cost_per_request": rounded(totals["cost"] / requests, 8) if requests else None,
                "metrics": metrics,
            }
        )
    return arms


def experiment_results(*, session: Session, experiment: Experiment) -> dict[str, Any]:
    bundle = session.get(Bundle, experiment.bundle_id)
    assert bundle is not None
    return {
        "experiment": experiment.id,
        "status": experiment.status,
        "primary_metric": experiment.primary_metric,
        "arms": arm_results(session, experiment, bundle),
    }
