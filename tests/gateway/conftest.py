"""Gateway fixtures."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.conftest import Api
from tests.llm import GATEWAY_PARAMS


@pytest.fixture
def live(api: Api) -> Api:
    """support-bot@1 in production, calling the mocked upstream."""
    api.create_bundle()
    api.publish(params=GATEWAY_PARAMS)
    api.to_production(1)
    return api


@pytest.fixture
def live_app(live: Api, app: FastAPI) -> tuple[Api, FastAPI]:
    return live, app
