"""The crew a project's ``@CrewBase`` code builds (as ``crew_reader`` describes it), as
Kasal's agents, tasks and crew settings, with everything else reported as dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.crewai.carry import COSMETIC, describe, instead
from adapters.crewai.project_layout import ProjectError
from domain.crew import schema_patterns

if TYPE_CHECKING:
    from adapters.crewai.project import _Builder

AGENT_CARRIED = ("role", "goal", "backstory", "allow_delegation", "max_iter", "max_rpm",
                 "max_execution_time")


def _model_part(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def _where(entry: dict[str, Any]) -> str:
    return f"{entry['file']}:{entry['line']}"


# settings that say where the prompts go: dropping them would send them somewhere else
ENDPOINTS = frozenset({"base_url", "api_base", "endpoint", "azure_endpoint"})


def _llm(builder: _Builder, who: str, value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("llm"):
        endpoint = sorted(ENDPOINTS & set(value.get("settings") or []))
        if endpoint:
            raise ProjectError(
                f"{where}: {who}: its llm sets {', '.join(endpoint)}, which Kasal cannot carry "
                f"over yet: its prompts would go to the provider's default endpoint instead. "
                f"Give the agent a model string litellm routes (e.g. ollama/<model>)")
        if value.get("settings"):
            builder.drop(f"{who}: llm settings {', '.join(value['settings'])}", where,
                         "the model runs with litellm's defaults for them")
        return str(value["llm"])
    return None


YamlLines = dict[str, tuple[str, dict[tuple[str, ...], int]]]  # kind -> (file, key lines)


def _at(entry: dict[str, Any], kind: str, name: str, lines: YamlLines) -> str:
    """Where a field was given: its line in the YAML file, else the method that builds it."""
    file, at = lines.get(kind, ("", {}))
    if name in entry["yaml"] and (entry["key"], name) in at:
        return f"{file}:{at[(entry['key'], name)]}"
    return _where(entry)


def _unknown(builder: _Builder, kind: str, entry: dict[str, Any], lines: YamlLines) -> None:
    file, at = lines.get(kind, ("", {}))
    for name in entry.get("unknown", []):
        line = at.get((entry["key"], name), 0)
        where = f"{file}:{line}" if file else _where(entry)
        builder.drop(f"{kind} {entry['key']!r}: {name}", where,
                     f"not a CrewAI {kind} field: ignored, as CrewAI ignores it")


def _agent(builder: _Builder, entry: dict[str, Any], default_model: str,
           lines: YamlLines) -> None:
    key, where, fields = entry["key"], _where(entry), entry["fields"]
    who = f"agent {key!r}"
    values: dict[str, Any] = {f: fields[f] for f in AGENT_CARRIED if f in fields}
    for text in ("role", "goal", "backstory"):
        if isinstance(values.get(text), str):
            values[text] = values[text].strip()
    llm = _llm(builder, who, fields.get("llm"), where)
    # CrewAI gives an agent without an llm its default model: that one is Kasal's default
    if llm and ("llm" in entry["yaml"] or _model_part(llm) != _model_part(default_model)):
        values["llm"] = llm
    values["tools"] = builder.tools(key, list(fields.get("tools") or []), where)
    if fields.get("knowledge_sources"):
        builder.knowledge(key, who, fields["knowledge_sources"],
                          _at(entry, "agent", "knowledge_sources", lines))
    derived = {"planning_config"} if "reasoning" in fields else set()  # reasoning sets it
    carried = (*AGENT_CARRIED, "llm", "tools", "knowledge_sources", *derived)
    for name, value in fields.items():
        if name not in carried and name not in COSMETIC:
            builder.drop(f"{who}: {name} = {describe(value)}", _at(entry, "agent", name, lines),
                         instead("agent", name))
    builder.agent(key, values, where)


def _without_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_patterns(v) for k, v in node.items()
                if k not in ("pattern", "patternProperties")}
    if isinstance(node, list):
        return [_without_patterns(v) for v in node]
    return node


def _task(builder: _Builder, entry: dict[str, Any], process: str,
          agent_tools: dict[str, Any], lines: YamlLines) -> None:
    key, where, fields = entry["key"], _where(entry), entry["fields"]
    values: dict[str, Any] = {
        "description": fields.get("description", ""),
        "expected_output": fields.get("expected_output", ""),
        "agent": (fields.get("agent") or {}).get("agent"),
        "context": [c.get("task") for c in fields.get("context") or [] if isinstance(c, dict)],
    }
    carried = ["description", "expected_output", "agent", "context"]
    if isinstance(fields.get("output_file"), str) and fields["output_file"]:
        values["output_file"] = fields["output_file"]  # an artifact of the execution
        carried.append("output_file")
    for kind in ("output_pydantic", "output_json"):  # a model class: its JSON Schema
        model = fields.get(kind)
        if isinstance(model, dict) and isinstance(model.get("schema"), dict):
            values["output_schema"] = _without_patterns(model["schema"])
            carried.append(kind)
            patterns = schema_patterns(model["schema"])
            if patterns:
                builder.drop(f"task {key!r}: {kind} {model.get('model')} pattern(s) "
                             f"{', '.join(patterns)}", _at(entry, "task", kind, lines),
                             "the answer's strings are not matched against them (a regular "
                             "expression on a model's answer can run for hours)")
    if fields.get("tools") == agent_tools.get(values["agent"]):
        carried.append("tools")  # CrewAI gives a task its agent's tools
    for name, value in fields.items():
        if name not in carried and name not in COSMETIC:
            builder.drop(f"task {key!r}: {name} = {describe(value)}",
                         _at(entry, "task", name, lines), instead("task", name))
    builder.task(key, values, where, process)


def from_code(builder: _Builder, crew: dict[str, Any], settings: dict[str, Any],
              lines: YamlLines) -> None:
    """Fill ``builder`` and ``settings`` (process, manager_llm, memory) from the crew."""
    if not crew:
        return
    fields, where = crew["fields"], f"{crew['file']}:{crew['line']}"
    process = str(fields.get("process") or settings.get("process") or "sequential")
    settings["process"] = process
    agent_tools = {}
    for entry in crew["agents"]:
        _agent(builder, entry, crew["default_llm"], lines)
        _unknown(builder, "agent", entry, lines)
        agent_tools[entry["key"]] = entry["fields"].get("tools")
    for entry in crew["tasks"]:
        _task(builder, entry, process, agent_tools, lines)
        _unknown(builder, "task", entry, lines)
    manager_llm = _llm(builder, "crew", fields.get("manager_llm"), where)
    manager = crew.get("manager_agent")
    if manager is not None:
        manager_llm = manager_llm or _llm(builder, f"manager agent {manager['key']!r}",
                                          manager["fields"].get("llm"), _where(manager))
        builder.drop(f"crew: manager_agent {manager['key']!r}", _where(manager),
                     "CrewAI's own manager leads the crew, with the manager agent's llm "
                     f"({manager_llm or 'the default'})")
    if manager_llm:
        settings["manager_llm"] = manager_llm
    memory = fields.get("memory")
    if memory:
        settings["memory"] = True
        if not isinstance(memory, bool):
            builder.drop(f"crew: memory = {describe(memory)}", where,
                         "Kasal's crew memory (offline embeddings, per crew) is used instead")
    if fields.get("knowledge_sources"):
        builder.knowledge("", "crew", fields["knowledge_sources"], where)
    for name, value in fields.items():
        if name not in ("process", "manager_llm", "memory", "knowledge_sources") and \
                name not in COSMETIC:
            builder.drop(f"crew: {name} = {describe(value)}", where, instead("crew", name))
    for name, line in crew.get("hooks", {}).items():
        builder.drop(f"crew: kickoff hook {name}", f"{crew['file']}:{line}", "not called")
