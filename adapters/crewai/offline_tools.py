"""Which file tool the offline model calls, and with what: a pure function of the task.

A task that names a file (``notes.txt``, ``out/report.md``) and offers a tool to read or
write files gets that tool: "write"/"save" with a writer writes the file (its content the
model's own answer), otherwise a reader reads it; a task that asks to list files gets the
directory tool. The tools are found by their CrewAI names ("Read a file's content", "File
Writer Tool", "List files in directory").
"""

from __future__ import annotations

import re
from collections.abc import Callable

FILE_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:txt|md|csv|json|yaml|yml|log))\b")
WRITE_WORDS = re.compile(r"\b(write|save|store)\b", re.IGNORECASE)
LIST_WORDS = re.compile(r"\blist\b.*\bfiles?\b", re.IGNORECASE)

Action = tuple[str, str, dict[str, str]]  # (thought, tool, arguments)


def file_action(task: str, tool_like: Callable[[str], str | None], body: str) -> Action | None:
    """The file tool call for ``task``, or None; ``body`` is what a writer would write."""
    def like(*words: str) -> str | None:  # CrewAI may offer "Read a file's content" as
        for word in words:                  # read_a_file_s_content
            found = tool_like(word) or tool_like(word.replace(" ", "_"))
            if found:
                return found
        return None

    named = FILE_NAME.search(task)
    writer = like("file writer", "write")
    reader = like("read a file", "file read")
    lister = like("list files", "directory")
    if named and writer and WRITE_WORDS.search(task):
        path = named.group(1)
        return (f"I will save the answer to {path} with the {writer}.", writer,
                {"filename": path, "content": body, "overwrite": "true"})
    if named and reader:
        path = named.group(1)
        return f"I need to read {path} with the {reader}.", reader, {"file_path": path}
    if lister and LIST_WORDS.search(task):
        return f"I will list the files with the {lister}.", lister, {"directory": "."}
    return None
