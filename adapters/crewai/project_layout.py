"""Where a CrewAI project's crews are, and what its code builds.

A path may be the project root (``pyproject.toml``, ``src/<pkg>/config/``: what ``crewai
create crew`` makes), a package folder (``src/<pkg>``), its ``config/`` folder, or a root
holding several crews (``src/<pkg>/crews/<name>/config/``, the Flows layout), which then
names them. A crew folder whose ``.py`` files hold a ``@CrewBase`` class is read by building
that crew in a subprocess (``adapters.crewai.crew_reader``); ``main.py``'s ``inputs`` are
read without running it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.crewai.offline_env import OFFLINE_ENV

SKIP = frozenset({"node_modules", "venv", "site-packages", "__pycache__", "build", "dist"})
READ_TIMEOUT_S = 180.0


class ProjectError(ValueError):
    """The project's files are missing or do not describe a crew; the message says which."""


@dataclass(frozen=True)
class CrewFolder:
    name: str
    folder: Path  # holds config/agents.yaml and config/tasks.yaml
    project_root: Path  # the folder with pyproject.toml, else what the user gave

    @property
    def has_code(self) -> bool:
        return any("CrewBase" in f.read_text(encoding="utf-8", errors="replace")
                   for f in self.folder.glob("*.py"))

    def relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.project_root))
        except ValueError:
            return str(path)


def _project_root(folder: Path) -> Path:
    """The nearest folder with a ``pyproject.toml`` (src/<pkg> is two levels down), else
    the crew's folder."""
    for parent in (folder, *folder.parents)[:4]:
        if (parent / "pyproject.toml").is_file():
            return parent
    return folder


def _crew_folders(path: Path) -> list[Path]:
    if path.name == "config" and (path / "agents.yaml").is_file():
        return [path.parent]
    if (path / "config" / "agents.yaml").is_file():
        return [path]
    found = []
    for agents in sorted(path.rglob("config/agents.yaml")):
        parts = agents.relative_to(path).parts
        if not any(p.startswith(".") or p in SKIP for p in parts) and len(parts) <= 7:
            found.append(agents.parent.parent)
    return found


def find_crews(path: Path, crew: str | None = None) -> CrewFolder:
    """The crew at ``path`` (``crew`` chooses one where the project holds several)."""
    given = path.resolve()
    folders = [CrewFolder(f.name, f, _project_root(f)) for f in _crew_folders(given)]
    if not folders:
        raise ProjectError(
            f"{path}: no CrewAI project here: expected config/agents.yaml and "
            "config/tasks.yaml (crewai create crew puts them in src/<package>/config/)"
        )
    if crew is not None:
        chosen = [f for f in folders if f.name == crew]
        if not chosen:
            raise ProjectError(f"{path}: no crew named {crew!r}; the crews here: "
                               f"{', '.join(f.name for f in folders)}")
        return chosen[0]
    if len(folders) > 1:
        raise ProjectError(f"{path} holds {len(folders)} crews "
                           f"({', '.join(f.name for f in folders)}): choose one with --crew NAME")
    return folders[0]


# Kasal's own settings and secrets stay out of the project's code (a provider's key that
# the project's own tools may need at construction stays in)
KASAL_ONLY = ("KASAL_", "DATABASE_", "POSTGRES_", "KAFKA_", "QDRANT_", "EVENT_STORE_",
              "CIPHER_")


def project_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(KASAL_ONLY)}
    return {**env, **OFFLINE_ENV}


def read_code(crew: CrewFolder) -> dict[str, Any]:
    """What the project's ``@CrewBase`` code builds (see ``crew_reader``), from a subprocess:
    the project's code runs (as ``crewai run`` runs it), without Kasal's settings."""
    env = project_env()
    command = [sys.executable, "-P", "-m", "adapters.crewai.crew_reader",
               str(crew.folder), str(crew.project_root)]
    kasal_root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(kasal_root), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(command, cwd=crew.project_root, env=env, capture_output=True,
                              text=True, timeout=READ_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ProjectError(f"{crew.relative(crew.folder)}: building the crew took longer than "
                           f"{READ_TIMEOUT_S:.0f} s; does its code wait on something?") from None
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProjectError(f"{crew.relative(crew.folder)}: the crew's code could not be read "
                           f"(exit {done.returncode}): {last}") from None
    if error := document.get("error"):
        where = f"{error['file']}:{error['line']}" if error.get("file") else crew.relative(
            crew.folder)
        raise ProjectError(f"{where}: {error['message']}")
    crews: list[dict[str, Any]] = document["crews"]
    if len(crews) > 1:
        names = ", ".join(c["class"] for c in crews)
        raise ProjectError(f"{crew.relative(crew.folder)} defines {len(crews)} @CrewBase "
                           f"classes ({names}): put each in its own folder")
    return crews[0] if crews else {}


def main_inputs(crew: CrewFolder) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The ``inputs = {...}`` that ``main.py``'s ``run()`` passes: the literal values, and
    (key, "file:line") of each one computed at run time."""
    main = crew.folder / "main.py"
    if not main.is_file():
        return {}, []
    try:
        tree = ast.parse(main.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return {}, []
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    chosen = [f for f in functions if f.name == "run"] or functions
    for function in chosen:
        for node in ast.walk(function):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                    and any(isinstance(t, ast.Name) and t.id == "inputs" for t in node.targets)):
                return _literal_items(node.value, f"{crew.relative(main)}")
    return {}, []


def _literal_items(mapping: ast.Dict, where: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    values: dict[str, Any] = {}
    computed = []
    for key_node, value_node in zip(mapping.keys, mapping.values, strict=True):
        if not isinstance(key_node, ast.Constant) or not isinstance(key_node.value, str):
            continue
        try:
            value = ast.literal_eval(value_node)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            computed.append((key_node.value, f"{where}:{value_node.lineno}"))
            continue
        if isinstance(value, str | int | float | bool):
            values[key_node.value] = value
        else:
            computed.append((key_node.value, f"{where}:{value_node.lineno}"))
    return values, computed
