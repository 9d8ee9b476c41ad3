"""LiteLLM's Router, one deployment per bundle version: chatver decides, LiteLLM executes.

Each version is its own model group (``model_name`` = ``model_info.id`` = the version id),
so LiteLLM's retries, timeouts and error mapping apply but it can never move a request to
another version. Cooldowns are off: a single-deployment group in cooldown would only turn
a provider hiccup into "no deployments available" for every caller.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.router import Router
from litellm.router_api import ChangeSet
from litellm.types.router import Deployment, LiteLLM_Params, RetryPolicy

from app.cache.resolver import ResolvedVersion
from app.settings import Settings

# Keys of a bundle's params that configure the deployment rather than the request.
DEPLOYMENT_PARAMS = frozenset({"api_base", "timeout", "mock_response"})


def configure_litellm(settings: Settings) -> None:
    """Module-wide LiteLLM settings, set once at start-up (and nowhere else)."""
    litellm.suppress_debug_info = True
    litellm.drop_params = False  # chatver allow-lists parameters itself
    litellm.disable_aiohttp_transport = settings.llm_transport == "httpx"
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)  # lower levels log whole request bodies
        logger.handlers.clear()
        logger.propagate = True


class LLMRouter:
    """Keeps LiteLLM's deployments in step with the versions chatver serves."""

    def __init__(self, settings: Settings) -> None:
        retries = settings.llm_num_retries
        self._router = Router(
            model_list=[],
            num_retries=retries,
            retry_policy=RetryPolicy(
                RateLimitErrorRetries=retries,
                InternalServerErrorRetries=retries,
                ServiceUnavailableErrorRetries=retries,
                TimeoutErrorRetries=min(retries, 1),
                AuthenticationErrorRetries=0,
                BadRequestErrorRetries=0,
                NotFoundErrorRetries=0,
                ContentPolicyViolationErrorRetries=0,
                DefaultRetries=0,
            ),
            timeout=settings.llm_timeout_seconds,
            disable_cooldowns=True,
        )
        self._deployed: set[str] = set()
        self._timeout = settings.llm_timeout_seconds

    def deployment_for(self, version: ResolvedVersion) -> Deployment:
        params: dict[str, Any] = {"model": version.effective_model, "timeout": self._timeout}
        for key in DEPLOYMENT_PARAMS & version.params.keys():
            params[key] = version.params[key]
        info: dict[str, Any] = {"id": version.version_id}
        base_model = (version.checkpoint or {}).get("base_model")
        if base_model:
            info["base_model"] = str(base_model).partition("/")[2] or base_model  # prices the fine-tune
        return Deployment(
            model_name=version.version_id, litellm_params=LiteLLM_Params(**params), model_info=info
        )

    def ensure(self, version: ResolvedVersion) -> None:
        """Register the version's deployment once; versions are immutable, so once is enough."""
        if version.version_id not in self._deployed:
            self._router.apply(ChangeSet(upsert=[self.deployment_for(version)]))
            self._deployed.add(version.version_id)

    async def complete(
        self,
        version: ResolvedVersion,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any],
        stream: bool,
    ) -> Any:
        self.ensure(version)
        return await self._router.acompletion(
            model=version.version_id, messages=messages, stream=stream, **params
        )

    @property
    def deployments(self) -> list[str]:
        return sorted(self._deployed)
