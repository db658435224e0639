"""The names of the built-in tools, importable without importing CrewAI (which takes seconds):
command handlers validate agents' tool names against this set."""

from __future__ import annotations

BUILTIN_TOOL_NAMES = frozenset({"calculator", "current_time"})
