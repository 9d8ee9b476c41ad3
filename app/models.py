"""Imports every table so that SQLModel.metadata (and Alembic) sees the whole schema."""

from app.auth.models import ApiKey, ConsoleSession, ServerSecret
from app.bundles.models import Bundle, Evaluation, Version
from app.events.models import ChatEvent, MetricHistogram, Outcome, SubjectAggregate, SubjectOutcome
from app.experiments.models import Experiment
from app.fleet.models import RuntimeReport
from app.lifecycle.models import Approval, Transition
from app.rollouts.models import Rollout

__all__ = [
    "ApiKey",
    "Approval",
    "Bundle",
    "ChatEvent",
    "ConsoleSession",
    "Evaluation",
    "Experiment",
    "MetricHistogram",
    "Outcome",
    "Rollout",
    "RuntimeReport",
    "ServerSecret",
    "SubjectAggregate",
    "SubjectOutcome",
    "Transition",
    "Version",
]
