"""Command messages: imperative, validated by pydantic before any handler runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.text import check_storable
from domain.vocabulary import Role

# every text a command carries is one every store can hold (no NUL, no lone surrogate)
Storable = AfterValidator(check_storable)
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Storable
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable
]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), Storable]
InputKey = Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
InputValue = Annotated[str, Storable] | int | float | bool
Reason = Annotated[str, StringConstraints(max_length=1000), Storable]
ToolOption = Annotated[str, StringConstraints(max_length=1000, strip_whitespace=True), Storable]
ToolOptions = Annotated[dict[Name, ToolOption], Field(max_length=8)]  # a tool's options
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProjectToolFields(BaseModel):
    """A project's own tool as data (``domain.project_code``): its source files and what
    makes it; filed under its SHA-256, which the agent's ``tools`` name as
    ``project:<sha256>``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # as the tool has it (not stripped: the bundle's hash covers it exactly)
    name: Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
    description: Annotated[str, StringConstraints(max_length=10_000), Storable] = ""
    args_schema: dict[str, Any] = Field(default_factory=dict)
    module: Name
    attribute: Name
    kind: Literal["class", "object"]
    files: dict[Name, Annotated[str, StringConstraints(max_length=100_000), Storable]] = Field(
        min_length=1, max_length=50)
    config: dict[Name, Any] = Field(default_factory=dict, max_length=32)


class AgentFields(Command):
    role: Name
    goal: Text
    backstory: Text
    llm: Name | None = None
    tools: list[Name] = Field(default_factory=list, max_length=32)
    allow_delegation: bool = False
    max_iter: int = Field(default=20, ge=1, le=100)
    tool_config: dict[Name, ToolOptions] = Field(default_factory=dict, max_length=32)
    max_rpm: int | None = Field(default=None, ge=1, le=10_000)
    max_execution_time: int | None = Field(default=None, ge=1, le=86_400)
    knowledge_sources: list[Id] = Field(default_factory=list, max_length=20)
    project_tools: dict[Sha256, ProjectToolFields] = Field(default_factory=dict, max_length=32)


class RegisterAgent(AgentFields):
    pass


class UpdateAgent(AgentFields):
    agent_id: Id


class ArchiveAgent(Command):
    agent_id: Id


class TaskFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Name
    description: Text
    expected_output: Text
    agent: Id | None = None
    context: list[Name] = Field(default_factory=list, max_length=50)
    human_input: bool = False
    output_schema: dict[str, Any] | None = None
    output_file: Name | None = None


class CrewFields(Command):
    name: Name
    process: Literal["sequential", "hierarchical"] = "sequential"
    agents: list[Id] = Field(min_length=1, max_length=50)
    tasks: list[TaskFields] = Field(min_length=1, max_length=50)
    manager_llm: Name | None = None
    memory: bool = False
    knowledge_sources: list[Id] = Field(default_factory=list, max_length=20)


class DefineCrew(CrewFields):
    pass


class UpdateCrew(CrewFields):
    crew_id: Id


class ArchiveCrew(Command):
    crew_id: Id


class RequestExecution(Command):
    crew_id: Id
    inputs: dict[InputKey, InputValue] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, le=86_400)


class CancelExecution(Command):
    execution_id: Id
    reason: Reason = "cancelled by user"


class IssueApiKey(Command):
    name: Name
    role: Role
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    prefix: Annotated[str, StringConstraints(max_length=32)]


class RevokeApiKey(Command):
    api_key_id: Id


class AddKnowledgeSource(Command):
    """A document's text (extracted from its file where it was one), chunked by the domain."""

    name: Name
    text: Annotated[str, StringConstraints(min_length=1, max_length=400_000), Storable]
    media_type: Literal["text/plain", "text/markdown", "text/csv", "application/json",
                        "application/pdf"] = "text/plain"
    origin: Annotated[str, StringConstraints(max_length=500), Storable] | None = None


class ArchiveKnowledgeSource(Command):
    knowledge_id: Id


# fields added after commands were first fingerprinted: left out while unset, so a command
# sent before they existed (a re-import, a client's retry) keeps its fingerprint
ADDED_LATER = frozenset({"output_schema", "output_json", "output_problem", "max_rpm",
                         "max_execution_time", "output_file", "error", "duration_ms",
                         "knowledge_sources"})
# likewise, left out while empty (``{}``: an empty mapping was never fingerprinted for them)
ADDED_LATER_MAPPINGS = frozenset({"project_tools"})


def _without_unset_later(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_unset_later(v) for k, v in value.items()
                if not (k in ADDED_LATER and v in (None, []))
                and not (k in ADDED_LATER_MAPPINGS and v in (None, {}))}
    if isinstance(value, list):
        return [_without_unset_later(v) for v in value]
    return value


def fingerprint_source(command: Command) -> dict[str, Any]:
    """What a retried command must repeat exactly for its idempotency key to match."""
    return {"command": type(command).__name__,
            "body": _without_unset_later(command.model_dump(mode="json"))}


# --- commands the execution runner sends (not exposed over HTTP) -----------------------
class FailExecution(Command):
    execution_id: Id
    error: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class Step(BaseModel):
    """One step of a run, as the runner batches them (see RecordSteps)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["start", "task_started", "llm_call", "tool_used", "task_completed", "complete"]
    task_name: Name | None = None
    call: dict[str, Any] | None = None
    tool: Name | None = None
    tool_input: str = ""
    output: str = ""
    error: str | None = None  # a tool call that failed (tool_used)
    duration_ms: Annotated[int, Field(ge=0)] | None = None  # how long a tool call ran
    output_json: dict[str, Any] | None = None  # a task with an output schema (task_completed)
    output_problem: str | None = None
    usage: dict[str, Any] | None = None


class RecordSteps(Command):
    """Several steps of one execution, appended in one transaction, in order."""

    execution_id: Id
    steps: list[Step] = Field(min_length=1, max_length=1000)


class ConfirmCancel(Command):
    execution_id: Id
    reason: str
