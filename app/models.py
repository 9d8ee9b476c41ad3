"""Imports every table so that SQLModel.metadata (and Alembic) sees the whole schema."""

from app.auth.models import ApiKey
from app.bundles.models import Bundle, Evaluation, Version
from app.lifecycle.models import Approval, Transition

__all__ = ["ApiKey", "Approval", "Bundle", "Evaluation", "Transition", "Version"]
