"""Splitting traffic: ``chatver experiment …`` (A/B tests) and ``chatver rollout …`` (guarded ramps)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli.catalog import JsonOption, table
from app.cli.client import EXIT_USAGE, fail, fetch, out, print_json, send

experiment_app = typer.Typer(help="A/B tests between versions of one bundle.", no_args_is_help=True)
rollout_app = typer.Typer(help="Guarded rollouts: ramp a version through steps.", no_args_is_help=True)

ExperimentId = Annotated[str, typer.Argument(metavar="ID", help="e.g. exp_1a2b…")]
GuardrailOption = Annotated[
    list[str] | None,
    typer.Option("--guardrail", metavar="METRIC=MAX", help="e.g. error_rate=0.02 (repeatable)"),
]


def _number(text: str, what: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        fail(f"{what}: {text!r} is not a number", EXIT_USAGE)
    return int(value) if value.is_integer() else value


def parse_arm(text: str) -> dict[str, Any]:
    """``control=3:50`` → {"name": "control", "version": 3, "weight": 50}; the weight defaults to 1."""
    name, eq, rest = text.partition("=")
    version, _, weight = rest.partition(":")
    if not eq or not name or not version.isdigit():
        fail(f"--arm {text!r}: expected NAME=VERSION[:WEIGHT], e.g. control=3:50", EXIT_USAGE)
    return {"name": name, "version": int(version), "weight": _number(weight or "1", f"--arm {text}")}


def parse_guardrails(texts: list[str] | None) -> list[dict[str, Any]]:
    guardrails = []
    for text in texts or []:
        metric, eq, limit = text.partition("=")
        if not eq or not metric:
            fail(f"--guardrail {text!r}: expected METRIC=MAX_REGRESSION, e.g. error_rate=0.02", EXIT_USAGE)
        guardrails.append({"metric": metric, "max_regression": _number(limit, f"--guardrail {text}")})
    return guardrails


def _print_experiment(experiment: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(experiment)
        return
    arms = ", ".join(f"{a['name']}=@{a['version']}:{a['weight']}" for a in experiment["arms"])
    out().print(f"{experiment['id']} ({experiment['bundle']}) {experiment['status']}: {arms}", markup=False)


@experiment_app.command("create")
def create_experiment(
    bundle: Annotated[str, typer.Argument(help="bundle name")],
    name: Annotated[str, typer.Option("--name", help="what the experiment tests")],
    arms: Annotated[
        list[str], typer.Option("--arm", metavar="NAME=VERSION[:WEIGHT]", help="first is the control")
    ],
    primary_metric: Annotated[str | None, typer.Option(help="outcome that decides, e.g. thumbs_up")] = None,
    guardrails: GuardrailOption = None,
    seed: Annotated[str | None, typer.Option(help="assignment seed (default: the id)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a draft experiment."""
    body: dict[str, Any] = {
        "name": name,
        "arms": [parse_arm(a) for a in arms],
        "guardrails": parse_guardrails(guardrails),
    }
    if primary_metric:
        body["primary_metric"] = primary_metric
    if seed:
        body["seed"] = seed
    _print_experiment(send(f"/api/bundles/{bundle}/experiments", body), as_json)


@experiment_app.command("list")
def list_experiments(
    bundle: Annotated[str, typer.Argument(help="bundle name")], as_json: JsonOption = False
) -> None:
    """Experiments of a bundle."""
    found = fetch(f"/api/bundles/{bundle}/experiments")
    if as_json:
        print_json(found)
        return
    rows = [[e["id"], e["name"], e["status"], len(e["arms"]), e["winner"]] for e in found]
    table(f"experiments of {bundle}", ["id", "name", "status", "arms", "winner"], rows)


@experiment_app.command("start")
def start_experiment(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Start (or resume) splitting traffic."""
    _print_experiment(send(f"/api/experiments/{experiment_id}/start"), as_json)


@experiment_app.command("pause")
def pause_experiment(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Pause: everyone gets production until it starts again."""
    _print_experiment(send(f"/api/experiments/{experiment_id}/pause"), as_json)


@experiment_app.command("stop")
def stop_experiment(
    experiment_id: ExperimentId,
    winner: Annotated[str | None, typer.Option(help="the arm that won")] = None,
    promote: Annotated[bool, typer.Option(help="promote the winner (approver)")] = False,
    reason: Annotated[str, typer.Option(help="why, for the history")] = "",
    as_json: JsonOption = False,
) -> None:
    """Stop for good, optionally naming and promoting the winner."""
    body: dict[str, Any] = {"promote": promote, "reason": reason}
    if winner:
        body["winner"] = winner
    _print_experiment(send(f"/api/experiments/{experiment_id}/stop", body), as_json)


@experiment_app.command("results")
def experiment_results(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Per-arm exposure, the primary metric, SRM, guardrails and the decision."""
    result = fetch(f"/api/experiments/{experiment_id}/results")
    if as_json:
        print_json(result)
        return
    metric = result.get("primary_metric")
    rows = []
    for arm in result["arms"]:
        summary = (arm.get("metrics") or {}).get(metric or "", {})
        lift = ((arm.get("vs_control") or {}).get(metric or "") or {}).get("lift")
        rows.append(
            [arm["name"], arm["version_id"], arm["subjects"], arm["requests"], arm["error_rate"],
             summary.get("mean"), lift]
        )  # fmt: skip
    table(
        f"{result['experiment']} ({result['status']})",
        ["arm", "version", "subjects", "requests", "error rate", f"{metric or 'primary'} mean", "lift"],
        rows,
    )
    srm = result.get("srm") or {}
    out().print(f"SRM p={srm.get('p_value')} flag={srm.get('flag')}", markup=False)
    out().print(f"decision: {result.get('decision')}", markup=False)


def _print_rollout(rollout: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(rollout)
        return
    out().print(
        f"{rollout['id']} {rollout['version_id']} vs {rollout['baseline_version_id']}: {rollout['status']}"
        f" ({rollout['state']}), step {rollout['step'] + 1}/{len(rollout['steps'])} at {rollout['percent']}%",
        markup=False,
    )
    if rollout.get("waiting_for"):
        out().print("waiting for: " + "; ".join(rollout["waiting_for"]), markup=False)
    if rollout.get("guardrails"):
        checks = rollout["guardrails"]
        rows = [[g["metric"], g["max_regression"], g["status"], g["regression"]] for g in checks]
        table(None, ["guardrail", "max regression", "status", "regression"], rows)


@rollout_app.command("create")
def create_rollout(
    bundle: Annotated[str, typer.Argument(help="bundle name")],
    version: Annotated[int, typer.Argument(help="approved version to ramp up", min=1)],
    guardrails: GuardrailOption = None,
    steps: Annotated[str, typer.Option(help="traffic percentages, comma-separated")] = "10,50,100",
    min_requests: Annotated[int, typer.Option("--min-requests", min=1, help="per step")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Start a guarded rollout (approver); it promotes at 100% or rolls back on a regression."""
    try:
        percents = [int(s) for s in steps.split(",")]
    except ValueError:
        fail(f"--steps {steps!r}: expected whole percentages such as 10,50,100", EXIT_USAGE)
    body = {
        "version": version,
        "steps": percents,
        "min_requests_per_step": min_requests,
        "guardrails": parse_guardrails(guardrails),
    }
    _print_rollout(send(f"/api/bundles/{bundle}/rollouts", body), as_json)


@rollout_app.command("show")
def show_rollout(
    rollout_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. ro_1a2b…")],
    as_json: JsonOption = False,
) -> None:
    """Where a rollout stands: step, share, what it waits for, guardrails."""
    _print_rollout(fetch(f"/api/rollouts/{rollout_id}"), as_json)
