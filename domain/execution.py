"""The Execution aggregate: one run of a crew, and its state machine.

``Requested`` pins a snapshot of the crew and its agents, so a run never changes
under a later edit. Progress events are accepted only while the run is live;
nothing is accepted after a terminal state.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from domain.agent import AgentSpec
from domain.artifacts import Artifact, check_rendered, render
from domain.base import KasalAggregate
from domain.crew import PLACEHOLDER, CrewSpec
from domain.errors import AlreadyStarted, ExecutionFinished, InvalidDefinition, InvalidTransition
from domain.project_code import MAX_RUN_CODE_CHARS
from domain.vocabulary import LIVE_STATUSES, TERMINAL_STATUSES, AggregateType
from domain.vocabulary import ExecutionStatus as Status

MAX_INPUTS = 100
MAX_INPUT_LENGTH = 20_000
MAX_TIMEOUT_S = 24 * 3600


def required_inputs(crew: CrewSpec, agents: dict[str, AgentSpec]) -> set[str]:
    """Every ``{placeholder}`` CrewAI will fill at kickoff: in tasks and in agents."""
    names = crew.required_inputs()
    for spec in agents.values():
        for text in (spec.role, spec.goal, spec.backstory):
            names.update(PLACEHOLDER.findall(text))
    return names


def check_inputs(
    crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, Any]
) -> dict[str, Any]:
    if len(inputs) > MAX_INPUTS:
        raise InvalidDefinition(f"inputs may hold at most {MAX_INPUTS} values")
    for key, value in inputs.items():
        if not isinstance(value, str | int | float | bool):
            raise InvalidDefinition(f"inputs.{key} must be a string, number or boolean")
        if len(str(value)) > MAX_INPUT_LENGTH:
            raise InvalidDefinition(f"inputs.{key} is longer than {MAX_INPUT_LENGTH} characters")
    missing = sorted(required_inputs(crew, agents) - inputs.keys())
    if missing:
        raise InvalidDefinition(
            "inputs is missing "
            + ", ".join(missing)
            + ": the crew uses "
            + ", ".join("{" + m + "}" for m in missing)
        )
    files: dict[str, str] = {}
    for task in crew.tasks:
        if task.output_file is not None:
            path = check_rendered(f"task {task.name!r}'s output_file", task.output_file, inputs)
            for other, by in files.items():
                if path == other or other.startswith(path + "/") or path.startswith(other + "/"):
                    raise InvalidDefinition(
                        f"tasks {by!r} and {task.name!r} would write {other!r} and {path!r} "
                        "with these inputs: each task needs a file of its own, and a file "
                        "is not a folder")
            files[path] = task.name
    return dict(inputs)


class Execution(KasalAggregate):
    AGGREGATE_TYPE = AggregateType.EXECUTION

    @classmethod
    def request(
        cls,
        tenant_id: str,
        crew_id: str,
        crew: CrewSpec,
        agents: dict[str, AgentSpec],
        inputs: dict[str, Any],
        timeout_s: float | None = None,
    ) -> Execution:
        missing = [a for a in crew.agents if a not in agents]
        if missing:
            raise InvalidDefinition(f"snapshot lacks agents {', '.join(missing)}")
        if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:
            raise InvalidDefinition(f"timeout_s must be between 0 and {MAX_TIMEOUT_S}")
        code = sum(tool.characters for agent_id in crew.agents
                   for tool in agents[agent_id].project_tools.values())
        if code > MAX_RUN_CODE_CHARS:
            raise InvalidDefinition(
                f"the crew's agents carry {code:,} characters of project code; a run carries "
                f"at most {MAX_RUN_CODE_CHARS:,}: share one tool between fewer agents, or "
                "make the tools' packages smaller")
        return cls(
            tenant_id=tenant_id,
            crew_id=crew_id,
            crew=crew.as_payload(),
            agents={agent_id: agents[agent_id].as_payload() for agent_id in crew.agents},
            inputs=check_inputs(crew, agents, inputs),
            timeout_s=timeout_s,
        )

    @event("Requested")
    def __init__(
        self,
        tenant_id: str,
        crew_id: str,
        crew: dict[str, Any],
        agents: dict[str, dict[str, Any]],
        inputs: dict[str, Any],
        timeout_s: float | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.crew_id = crew_id
        self.crew = CrewSpec.from_payload(crew)
        self.agents = {k: AgentSpec.from_payload(v) for k, v in agents.items()}
        self.inputs = inputs
        self.timeout_s = timeout_s
        self.status = Status.REQUESTED
        self.completed_tasks: dict[str, str] = {}
        self.result: str | None = None
        self.error: str | None = None

    # --- checks -------------------------------------------------------------------
    def check_not_finished(self) -> None:
        if self.status in TERMINAL_STATUSES:
            raise ExecutionFinished(f"execution {self.id} is {self.status}")

    def check_live(self, what: str) -> None:
        self.check_not_finished()
        if self.status not in LIVE_STATUSES:
            raise InvalidTransition(f"cannot record {what}: execution {self.id} is {self.status}")

    def check_task(self, task_name: str) -> None:
        if task_name not in {t.name for t in self.crew.tasks}:
            raise InvalidDefinition(f"execution {self.id} has no task {task_name!r}")

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self.check_not_finished()
        if self.status != Status.REQUESTED:
            raise AlreadyStarted(f"execution {self.id} is {self.status}, not requested")
        self._started()

    @event("Started")
    def _started(self) -> None:
        self.status = Status.RUNNING

    def start_task(self, task_name: str) -> None:
        self.check_live("a task start")
        self.check_task(task_name)
        self._task_started(task_name=task_name)

    @event("TaskStarted")
    def _task_started(self, task_name: str) -> None:
        pass

    def record_llm_call(self, call: dict[str, Any]) -> None:
        self.check_live("an LLM call")
        self._llm_call_completed(call=call)

    @event("LlmCallCompleted")
    def _llm_call_completed(self, call: dict[str, Any]) -> None:
        pass

    def record_tool_use(
        self, task_name: str | None, tool: str, tool_input: str, output: str,
        error: str | None = None, duration_ms: int | None = None,
    ) -> None:
        """A tool call: its result as the agent saw it, why it failed (``error``: the tool
        raised, or reported a failure) and how long it ran. Events recorded before error and
        duration were kept read as None for both."""
        self.check_live("a tool use")
        self._tool_used(task_name=task_name, tool=tool, input=tool_input, output=output,
                        error=error, duration_ms=duration_ms)

    @event("ToolUsed")
    def _tool_used(self, task_name: str | None, tool: str, input: str, output: str,
                   error: str | None = None, duration_ms: int | None = None) -> None:
        pass

    def complete_task(self, task_name: str, output: str,
                      output_json: dict[str, Any] | None = None,
                      output_problem: str | None = None) -> None:
        """A task's answer; with an output schema also its JSON (valid against it), or why
        the answer is not (its text is kept either way)."""
        self.check_live("a task completion")
        self.check_task(task_name)
        if task_name in self.completed_tasks:
            raise InvalidTransition(f"task {task_name!r} of execution {self.id} already completed")
        self._task_completed(task_name=task_name, output=output)
        if output_json is not None or output_problem is not None:
            self._task_output_checked(task_name=task_name, output_json=output_json,
                                      problem=output_problem)
        [spec] = [t for t in self.crew.tasks if t.name == task_name]
        if spec.output_file is not None:
            artifact = Artifact.of(render(spec.output_file, self.inputs), output, output_json)
            # the output itself is in TaskCompleted, just above: not copied (the log's size)
            self._artifact_stored(task_name=task_name, path=artifact.path,
                                  sha256=artifact.sha256, size=artifact.size,
                                  media_type=artifact.media_type,
                                  content=None if artifact.content == output else artifact.content)

    @event("TaskCompleted")
    def _task_completed(self, task_name: str, output: str) -> None:
        self.completed_tasks[task_name] = output

    @event("TaskOutputChecked")
    def _task_output_checked(self, task_name: str, output_json: dict[str, Any] | None,
                             problem: str | None) -> None:
        pass

    def complete(self, result: str, usage: dict[str, Any]) -> None:
        self.check_live("completion")
        self._completed(result=result, usage=usage)

    @event("ArtifactStored")
    def _artifact_stored(self, task_name: str, path: str, sha256: str, size: int,
                         media_type: str, content: str | None) -> None:
        pass

    @event("Completed")
    def _completed(self, result: str, usage: dict[str, Any]) -> None:
        self.status = Status.COMPLETED
        self.result = result

    def fail(self, error: str) -> None:
        self.check_not_finished()
        self._failed(error=error)

    @event("Failed")
    def _failed(self, error: str) -> None:
        self.status = Status.FAILED
        self.error = error

    def request_cancel(self, reason: str) -> None:
        """Cancel a run: at once if it never started, else at the runner's next step."""
        self.check_not_finished()
        if self.status == Status.CANCEL_REQUESTED:
            raise InvalidTransition(f"cancel of execution {self.id} was already requested")
        if self.status == Status.REQUESTED:
            self._cancelled(reason=reason, completed_tasks={})
        else:
            self._cancel_requested(reason=reason)

    @event("CancelRequested")
    def _cancel_requested(self, reason: str) -> None:
        self.status = Status.CANCEL_REQUESTED

    def confirm_cancel(self, reason: str) -> None:
        """The runner stopped the run; the outputs of the tasks it finished are kept."""
        self.check_live("a cancellation")
        self._cancelled(reason=reason, completed_tasks=dict(self.completed_tasks))

    @event("Cancelled")
    def _cancelled(self, reason: str, completed_tasks: dict[str, str]) -> None:
        self.status = Status.CANCELLED
