"""Keep CrewAI and litellm off the network: the variables both read when imported.

Without them crewai tries telemetry hosts eight times per run and litellm downloads its cost
map (../shared/LIBRARY-NOTES.md). Importing this module changes nothing: the composition
root calls ``apply()`` before it imports anything that imports crewai or litellm.
"""

from __future__ import annotations

import os

OFFLINE_PROVIDER = "kasal-offline"  # the offline model's litellm provider (offline_llm.py)
OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # crewai sets this when imported (crewai/knowledge/knowledge.py): set first, explicitly
    "TOKENIZERS_PARALLELISM": "false",
}


def apply() -> None:
    """Set each variable that is not set yet."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
