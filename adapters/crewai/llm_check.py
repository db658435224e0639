"""Models checked before anything is appended: a model string litellm cannot route is refused
when an agent or crew names it, and a run whose models lack their provider's credentials in
this process's environment is refused when it is requested (not a run that fails later as
``InternalServerError``). litellm is imported on the first check only."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from adapters.crewai.offline_env import OFFLINE_PROVIDER as PROVIDER
from adapters.crewai.offline_env import apply

# a variable litellm lists as missing counts when its name says it is a secret (not, say,
# OLLAMA_API_BASE, which has a local default)
CREDENTIAL_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
# providers whose SDKs find credentials without variables (IAM roles, instance profiles,
# workload identity, AWS_PROFILE...): not checked here
AMBIENT_CREDENTIALS = frozenset({"bedrock", "sagemaker", "sagemaker_chat", "vertex_ai",
                                 "vertex_ai_beta"})
AZURE_IDENTITY = ("AZURE_AD_TOKEN", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


def _litellm() -> Any:
    apply()  # no cost-map download, no telemetry, whoever imports litellm first
    import litellm

    litellm.suppress_debug_info = True  # no "Provider List: ..." banners in Kasal's output
    return litellm


def _custom_providers() -> set[str]:
    return {str(entry.get("provider")) for entry in _litellm().custom_provider_map}


def model_problem(model: str) -> str | None:
    """Why litellm cannot route ``model`` (None: it can)."""
    provider = model.partition("/")[0]
    if provider == PROVIDER or provider in _custom_providers():
        return None
    return _routing_problem(model)


@lru_cache(maxsize=1024)
def _routing_problem(model: str) -> str | None:
    litellm = _litellm()
    try:
        litellm.get_llm_provider(model)
    except Exception:  # litellm's BadRequestError: it names no provider it knows
        return (f"litellm does not know the model {model!r}: write it as provider/model "
                f"(e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
                f"ollama/llama3), or {PROVIDER}/default for the offline model")
    return None


def credentials_problem(model: str) -> str | None:
    """The provider credentials ``model`` needs that this process's environment lacks."""
    provider = model.partition("/")[0]
    if provider == PROVIDER or provider in _custom_providers() or model_problem(model):
        return None  # Kasal's own models; an unknown one was refused at definition
    routed = _litellm().get_llm_provider(model)[1]
    if routed in AMBIENT_CREDENTIALS or (
            routed == "azure" and any(os.environ.get(name) for name in AZURE_IDENTITY)):
        return None
    found = _litellm().validate_environment(model)
    missing = [name for name in found.get("missing_keys", [])
               if any(word in name for word in CREDENTIAL_WORDS)]
    if found.get("keys_in_environment") or not missing:
        return None
    return (f"the model {model!r} needs {' or '.join(missing)} in the environment of the "
            "processes that run it: set it there, or choose another model")
