"""The offline model's answer to CrewAI's knowledge query rewrite: the task itself.

Before a task of an agent with knowledge, CrewAI asks the agent's model to rewrite the task
prompt into a search query ("Your goal is to rewrite the user query so that it is optimized
for retrieval from a vector database..."; user: "The original query is: <task prompt>.").
The offline model answers with the task's description on one line, without the expected
output CrewAI appends to it: the words the task is about.
"""

from __future__ import annotations

import re
from typing import Any

REWRITE_MARK = "rewrite the user query so that it is optimized for retrieval"
_ORIGINAL = re.compile(r"The original query is: (.*?)(?:\n\nThis is the expected criteria|"
                       r"\.?\s*\Z)", re.DOTALL)


def rewritten_query(messages: list[Any]) -> str | None:
    """The query, when ``messages`` are CrewAI's knowledge query rewrite; else None."""
    texts = [(str(m.get("role", "")), str(m.get("content") or ""))
             for m in messages if isinstance(m, dict)]
    if not any(role == "system" and REWRITE_MARK in text for role, text in texts):
        return None
    user = next((text for role, text in texts if role == "user"), "")
    found = _ORIGINAL.search(user)
    query = " ".join((found.group(1) if found else user).split())
    return query[:500] or "the task"
