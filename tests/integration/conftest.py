"""Integration tests of the CrewAI adapters: real CrewAI and litellm, the offline model.

CrewAI and litellm must be told to stay offline before they are imported, and CrewAI's
files must go to a throw-away directory: this module runs before any test module."""

from __future__ import annotations

import adapters.offline_env  # noqa: F401  (before crewai and litellm)

# isort: split

import atexit
import os
import shutil
import tempfile

_STORAGE = tempfile.mkdtemp(prefix="kasal-crewai-storage-")
os.environ["CREWAI_STORAGE_DIR"] = _STORAGE
atexit.register(shutil.rmtree, _STORAGE, ignore_errors=True)

from adapters.offline_llm import register_offline_provider  # noqa: E402

register_offline_provider()
