"""Keep CrewAI and litellm off the network. Importing this module sets the variables (when
unset), so modules that import crewai or litellm import it first: both read them at import.

Without them crewai tries telemetry hosts eight times per run and litellm downloads its cost
map (../shared/LIBRARY-NOTES.md)."""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}


def apply() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


apply()
