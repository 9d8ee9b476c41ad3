"""The seam between the lifecycle and what splits traffic (experiments, guarded rollouts).

Experiments and rollouts sit above the lifecycle and call it to promote, so the lifecycle
does not import them: callers pass in a ``Traffic`` that answers for them, inside the same
transaction as the stage move.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlmodel import Session


class Traffic(Protocol):
    def serving(self, session: Session, bundle_id: int, number: int) -> str | None:
        """What serves traffic with this version ("experiment exp_…", "rollout ro_…"), if anything."""
        ...

    def stop_all(self, session: Session, bundle_id: int, reason: str) -> None:
        """Stop every experiment and rollout of the bundle (a rollback returns traffic to production)."""
        ...


def get_traffic(request: Request) -> Traffic:
    traffic: Traffic = request.app.state.traffic
    return traffic


TrafficDep = Annotated[Traffic, Depends(get_traffic)]
