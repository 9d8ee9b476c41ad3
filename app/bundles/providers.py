"""Which LLM providers a bundle's model may name: the ones LiteLLM knows."""

from __future__ import annotations

import os
from functools import cache

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map at import


@cache
def known_providers() -> frozenset[str]:
    import litellm

    return frozenset(p.value if hasattr(p, "value") else str(p) for p in litellm.provider_list)


@cache
def _bare_model_providers() -> dict[str, str]:
    import litellm

    return {
        name: str(info["litellm_provider"])
        for name, info in litellm.model_cost.items()
        if isinstance(info, dict) and info.get("litellm_provider") and "/" not in name
    }


def provider_of(model: str) -> str:
    """The provider of a LiteLLM model string ("openai/gpt-4o-mini" → "openai"); ValueError if unknown."""
    provider, slash, name = model.partition("/")
    if slash:
        if provider not in known_providers():
            raise ValueError(f"unknown provider {provider!r}; use a provider LiteLLM knows, e.g. openai/…")
        if not name.strip():
            raise ValueError("the model name after the provider is empty")
        return provider
    bare = _bare_model_providers().get(model)
    if bare is None:
        raise ValueError(
            f"cannot tell the provider of {model!r}; write it as provider/model, e.g. openai/gpt-4o-mini"
        )
    return bare


def effective_model(model: str, checkpoint_ref: str | None) -> str:
    """The model string LiteLLM is called with: the checkpoint ref on the model's provider, if any."""
    if not checkpoint_ref:
        return model
    provider = provider_of(model)
    if checkpoint_ref.startswith(provider + "/"):
        return checkpoint_ref
    return f"{provider}/{checkpoint_ref}"
