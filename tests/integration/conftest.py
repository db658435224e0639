"""Integration tests of the CrewAI adapters: real CrewAI and litellm, the offline model.

CrewAI and litellm must be told to stay offline before they are imported, and CrewAI's
files must go to a throw-away directory: this module runs before any test module."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

for _name, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}.items():
    os.environ.setdefault(_name, _value)

_STORAGE = tempfile.mkdtemp(prefix="kasal-crewai-storage-")
os.environ["CREWAI_STORAGE_DIR"] = _STORAGE
atexit.register(shutil.rmtree, _STORAGE, ignore_errors=True)

from adapters.offline_llm import register_offline_provider  # noqa: E402

register_offline_provider()
