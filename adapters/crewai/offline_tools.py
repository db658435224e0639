"""Which file or web tool the offline model calls, and with what: a pure function of the task.

A task that names a file (``notes.txt``, ``out/report.md``) and offers a tool to read or
write files gets that tool: "write"/"save" with a writer writes the file (its content the
model's own answer), otherwise a reader reads it; a task that asks to list files gets the
directory tool. The tools are found by their CrewAI names ("Read a file's content", "File
Writer Tool", "List files in directory").

A task that names an http(s) URL and offers a website reader ("Read website content") gets
it with that URL (or without one, where the tool was configured with its own); a task that
asks to search ("search for ...", "look up ...") and offers a search tool gets the rest of
the sentence as its query, under the argument name the tool's schema takes. Failing those, a
task that names one of its tools (a project's own, say) calls it (``named_action``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

FILE_NAME = re.compile(
    r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:txt|md|mdx|csv|json|yaml|yml|log|pdf|docx))\b")
TRAILING = re.compile(r"\s+(?:in|from|of)(?: the (?:file|document))?\s*$", re.IGNORECASE)
# the file arguments of crewai-tools' search tools (an unconfigured one names its file)
SEARCHED_FILE = ("txt", "csv", "json_path", "pdf", "docx", "mdx")
WRITE_WORDS = re.compile(r"\b(write|save|store)\b", re.IGNORECASE)
LIST_WORDS = re.compile(r"\blist\b.*\bfiles?\b", re.IGNORECASE)
URL = re.compile(r"https?://[^\s\"'<>)]+[^\s\"'<>).,;:!?]")
SEARCH = re.compile(r"\b(?:search(?: the web| the internet)?(?: for)?|look up)\s+([^.?!\n]+)",
                    re.IGNORECASE)

QUOTED = re.compile(r"'([^'\n]{1,500})'|\"([^\"\n]{1,500})\"")

Action = tuple[str, str, dict[str, str]]  # (thought, tool, arguments)


def named_action(task: str, tools: tuple[str, ...],
                 arguments_of: Callable[[str], list[str]]) -> Action | None:
    """A task that asks to use an offered tool by its name ("use the word reverser", "call
    word_reverser": as CrewAI lists it, or in words) gets a call of it: its first argument is
    the task's first quoted text."""
    spoken = task.lower().replace("_", " ")
    for tool in tools:
        name = re.escape(tool.lower().replace("_", " "))
        if re.search(rf"\b(?:use|call|run|with)\s+(?:the\s+)?{name}\b", spoken):
            arguments = arguments_of(tool)
            quoted = QUOTED.search(task)
            given = {arguments[0]: quoted.group(1) or quoted.group(2)} \
                if arguments and quoted else {}
            return f"I will use the {tool}.", tool, given
    return None


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


def web_action(task: str, tool_like: Callable[[str], str | None],
               takes: Callable[[str, str], bool]) -> Action | None:
    """The website or search tool call for ``task``, or None; ``takes(tool, argument)``
    says whether the tool's schema has that argument."""
    reader = tool_like("website")
    url = URL.search(task)
    if reader and (url or not takes(reader, "website_url")):
        arguments = {"website_url": url.group(0)} if url and takes(reader, "website_url") else {}
        where = url.group(0) if url else "the configured site"
        return f"I will read {where} with the {reader}.", reader, arguments
    searcher = tool_like("search")
    files = searcher is not None and any(takes(searcher, o) for o in SEARCHED_FILE)
    query = SEARCH.search(FILE_NAME.sub("", task) if files else task)  # a file: an argument
    if searcher and query:
        argument = next((a for a in ("search_query", "query", "q") if takes(searcher, a)),
                        "search_query")
        text = TRAILING.sub("", query.group(1).strip())
        arguments = {argument: text}
        named = FILE_NAME.search(task)
        for option in SEARCHED_FILE:
            if named and takes(searcher, option):
                arguments[option] = named.group(1)
        if takes(searcher, "directory"):
            arguments["directory"] = "."
        return f"I will search for {text} with the {searcher}.", searcher, arguments
    return None
