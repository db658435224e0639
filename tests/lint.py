"""An import-linter contract type of Kasal's own: importing a module changes nothing in
``os.environ`` (no settings applied behind the composition root's back).

``lint-imports`` runs it (``.importlinter``, contract ``import_time``): every module of the
listed packages is imported, one after another, in a fresh interpreter, and
each module whose import added, changed or removed a variable is reported by name. The
``prepare`` option names a function (``module:function``) the probe calls explicitly, as
the composition root does, once its module was imported (and checked) like any other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

PROBE = """
import importlib, json, os, sys
changed = {}
prepare_module, _, prepare = sys.argv[2].partition(":")

def load(name):
    before = dict(os.environ)
    module = importlib.import_module(name)
    after = dict(os.environ)
    diff = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if diff:
        changed[name] = diff
    return module

getattr(load(prepare_module), prepare)()  # what the composition root calls, explicitly
for name in json.loads(sys.argv[1]):
    load(name)
print(json.dumps(changed))
"""


class ImportTimeContract(Contract):
    packages = fields.ListField(subfield=fields.StringField())
    prepare = fields.StringField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        modules = sorted(
            m for package in self.packages for m in graph.find_descendants(package) | {package}
        )
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(modules), self.prepare], env=env,
            cwd=os.getcwd(),
            capture_output=True, text=True, timeout=600, check=False,
        )
        if done.returncode != 0:
            return ContractCheck(kept=False, metadata={"error": done.stderr[-3000:]})
        changed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return ContractCheck(kept=not changed, metadata={"changed": changed})

    def render_broken_contract(self, check: ContractCheck) -> None:
        if "error" in check.metadata:
            output.print_error("importing the modules failed:")
            output.print(check.metadata["error"])
            return
        for module, names in sorted(check.metadata["changed"].items()):
            output.print_error(f"importing {module} changed {', '.join(names)}")
