"""The stage machine and the production stack, as pure functions."""

from __future__ import annotations

from collections.abc import Iterable

from app.bundles.models import Stage
from app.lifecycle.models import TransitionKind

# Moves an editor may make; validation → production is the gated promotion.
LEGAL_MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.draft: frozenset({Stage.staging, Stage.archived}),
    Stage.staging: frozenset({Stage.validation, Stage.archived}),
    Stage.validation: frozenset({Stage.staging, Stage.production, Stage.archived}),
    Stage.production: frozenset(),  # leaves production only when replaced or rolled back
    Stage.archived: frozenset({Stage.staging}),
}


def illegal_move_reason(current: Stage, target: Stage) -> str | None:
    """Why current → target is not allowed, or None when it is."""
    if target in LEGAL_MOVES[current]:
        return None
    if current is Stage.production:
        return (
            "a production version leaves production only when another version is promoted "
            "or production is rolled back"
        )
    allowed = ", ".join(sorted(s.value for s in LEGAL_MOVES[current])) or "none"
    return f"cannot move from {current.value} to {target.value}; legal moves from {current.value}: {allowed}"


def production_stack(entries: Iterable[tuple[int, str]]) -> list[int]:
    """Replay (version number, kind) of every entry into production, oldest first.

    A promotion pushes a version; a rollback returns to its target, dropping what was above
    it, so repeated rollbacks walk back through earlier production versions (v3 → v2 → v1)
    rather than bouncing between the last two.
    """
    stack: list[int] = []
    for number, kind in entries:
        if kind == TransitionKind.promotion.value:
            stack.append(number)
            continue
        if number in stack:
            top = len(stack) - 1 - stack[::-1].index(number)
            del stack[top + 1 :]
            continue
        if stack:
            stack.pop()
        stack.append(number)
    return stack
