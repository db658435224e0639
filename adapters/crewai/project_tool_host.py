"""The process a project's own tool runs in (``python -I -m adapters.crewai.project_tool_host``).

One process per tool bundle per run (``code_tools.CodeHost`` starts it). Its protocol is one
JSON document a line on stdin and stdout: first the bundle (``domain.project_code``'s
payload: files, module, attribute, kind, config), answered ``{"ok": true, "name": ...}`` once
the tool is built or ``{"ok": false, "error": ...}``; then one ``{"arguments": {...}}`` per
call, answered ``{"ok": true, "result": "..."}`` or ``{"ok": false, "error": "..."}``. The
files are written to a fresh directory that goes first on the path: the process runs exactly
the source the agent was defined with. What the code prints goes to stderr, never into the
protocol. ``-I``: the working directory (the tenant's workspace, which agents write to) and
``PYTHON*`` variables never reach the path.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import IO, Any

MAX_RESULT_CHARS = 200_000  # what one call brings into a prompt (and into its ToolUsed)


def _reply(out: IO[str], document: dict[str, Any]) -> None:
    out.write(json.dumps(document, default=str) + "\n")
    out.flush()


def _error(error: BaseException, root: Path) -> str:
    """The error, and the line of the bundle's code it came from."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(root):
            where = f" ({path.relative_to(root)}:{frame.lineno})"
    return f"{type(error).__name__}: {error}{where}"


def _build(bundle: dict[str, Any], root: Path) -> Any:
    for path, source in bundle["files"].items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    sys.path.insert(0, str(root))
    module = importlib.import_module(bundle["module"])
    target = getattr(module, bundle["attribute"])
    tool = target(**bundle.get("config") or {}) if bundle["kind"] == "class" else target
    if not callable(getattr(tool, "run", None)):
        raise TypeError(f"{bundle['module']}.{bundle['attribute']} is not a CrewAI tool "
                        f"(a {type(tool).__name__}, without run())")
    return tool


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # fd 1 is stderr from here: the code's prints stay out of the protocol
    sys.stdout = sys.stderr
    root = Path(tempfile.mkdtemp(prefix="kasal-code-"))
    try:
        line = sys.stdin.readline()
        if not line:
            return
        try:
            tool = _build(json.loads(line), root)
        except BaseException as error:  # the project's code: reported, never raised
            _reply(protocol, {"ok": False, "error": _error(error, root)})
            return
        _reply(protocol, {"ok": True, "name": str(getattr(tool, "name", ""))})
        for line in sys.stdin:
            try:
                result = str(tool.run(**json.loads(line)["arguments"]))
                if len(result) > MAX_RESULT_CHARS:
                    result = (f"{result[:MAX_RESULT_CHARS]}\n[cut: {len(result) - MAX_RESULT_CHARS}"
                              " more characters]")
                _reply(protocol, {"ok": True, "result": result})
            except Exception as error:  # the tool's own failure: the agent reads it
                _reply(protocol, {"ok": False, "error": _error(error, root)})
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
