"""The seam between the registry and what splits a bundle's traffic (experiments, guarded rollouts).

Experiments and rollouts sit above the registry and the lifecycle and call them (to read
versions, to promote), so neither imports them: callers pass in a ``Traffic`` that answers for
them, inside the same transaction. The application installs ``app.rollouts.traffic.TRAFFIC``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlmodel import Session


@dataclass(frozen=True)
class Splitting:
    """What splits one bundle's traffic right now (at most one of them runs at a time)."""

    experiment: str | None = None  # the running experiment's id
    rollout: str | None = None  # the running guarded rollout's id


class Traffic(Protocol):
    def serving(self, session: Session, bundle_id: int, number: int) -> str | None:
        """What serves traffic with this version ("experiment exp_…", "rollout ro_…"), if anything."""
        ...

    def running(self, session: Session, bundle_ids: Sequence[int]) -> dict[int, Splitting]:
        """The running experiment or rollout of each bundle that has one."""
        ...

    def stop_all(self, session: Session, bundle_id: int, reason: str) -> None:
        """Stop every experiment and rollout of the bundle (a rollback returns traffic to production)."""
        ...


def get_traffic(request: Request) -> Traffic:
    traffic: Traffic = request.app.state.traffic
    return traffic


TrafficDep = Annotated[Traffic, Depends(get_traffic)]
