"""``CrewAIEngine``: the ``streams.engine.CrewEngine`` port, implemented with CrewAI.

``run()`` builds a CrewAI crew from the pinned snapshot (agents, tasks, process), every
model call through a ``GatewayLLM`` of its own, kicks it off (blocking) and reports each
step through the run's hooks, in the order the steps happen:

- ``task_started``: from the task itself (``execute_sync``, before the agent runs), on the
  kickoff thread, so it precedes the task's model calls;
- ``llm_call``: from the gateway, right after each model call, before CrewAI acts on it;
- ``tool_used``: from a CrewAI ``after_tool_call`` interception hook, right after the tool
  ran (on the agent's thread), before the next model call. A ``before_tool_call`` hook notes
  the call, and each of Kasal's tools first asks ``hooks.recorded_tool_result`` for it: a
  resumed run gets the results its tools gave before, instead of calling them again (a file
  written twice, a clock read anew that would change every later model request);
- ``task_completed``: from the task itself, with the ``TaskOutput``, before the crew starts
  the next task.

CrewAI's event bus is not used for these: its handlers run later on a thread pool, so a
step reported from there could reach the log after the steps that followed it.

Several runs may share the process: every hook is filtered to the Crew/Agent/Task objects
that this run built, and the tool hook is unregistered when the run ends.

A crew with ``memory`` on gets a recall-only ``KasalMemory`` (``adapters.crewai.memory``):
before each task CrewAI recalls past task outputs of the crew through
``RunHooks.recall_memory`` and adds them to the prompt; its ``Search memory`` tool uses the
same recall and is recorded like any tool.

Cancellation is checked before every model call (the gateway), and before and after every
task; ``RunCancelled`` propagates out of ``run()``. A hook that failed keeps failing (the
``RunHooks`` contract), so the run stops at its next step even where CrewAI catches the
error, and ``run()`` raises it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crewai import Agent, Crew, CrewOutput, Process, Task
from crewai.agents.agent_builder.base_agent import BaseAgent
from crewai.hooks import (
    HookAborted,
    ToolCallHookContext,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)
from crewai.tasks.task_output import TaskOutput
from crewai.tools import BaseTool
from pydantic import PrivateAttr

from adapters.crewai.call_limits import CallLimits
from adapters.crewai.code_tools import ProjectCode
from adapters.crewai.knowledge import KnowledgeAgent, build_knowledge
from adapters.crewai.llm_gateway import GatewayLLM
from adapters.crewai.memory import build_memory
from adapters.crewai.structured import instructed, structured
from adapters.crewai.tool_calls import RunObjects, replaying
from adapters.crewai.tools import build_tools, check_tools
from adapters.crewai.workspace import Workspace
from domain.agent import AgentSpec
from domain.crew import CrewSpec, TaskSpec, check_crew_spec
from domain.errors import InvalidDefinition
from streams.engine import RunCancelled, RunHooks, RunResult


class _HookedTask(Task):
    """A CrewAI task that reports its start before its agent runs, and its output before
    the crew moves on, synchronously, on the kickoff thread. (A ``Task.callback`` would do
    for the end, but CrewAI warns that a per-run closure there blocks its checkpointing.)"""

    _kasal_on_start: Callable[[_HookedTask], None] | None = PrivateAttr(default=None)
    _kasal_on_done: Callable[[_HookedTask, TaskOutput], None] | None = PrivateAttr(default=None)

    def execute_sync(
        self,
        agent: BaseAgent | None = None,
        context: str | None = None,
        tools: list[BaseTool] | None = None,
    ) -> TaskOutput:
        if self._kasal_on_start is not None:
            self._kasal_on_start(self)
        output = super().execute_sync(agent=agent, context=context, tools=tools)
        if self._kasal_on_done is not None:
            self._kasal_on_done(self, output)
        return output


def _cancelled_in(error: BaseException) -> RunCancelled | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, RunCancelled):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class CrewAIEngine:
    """Runs a crew snapshot with CrewAI. Thread-safe: one call of ``run`` per run."""

    def __init__(
        self,
        *,
        max_retries: int = 3,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        timeout: float | None = None,
        workspaces: Path,
        project_code: bool = False,
        project_tool_timeout_s: float = 120.0,
        code_env: Mapping[str, str] | None = None,
    ) -> None:
        # the tenants' workspaces: KASAL_WORKSPACE_DIR/<tenant> (file tools touch only that)
        self.workspaces = workspaces
        # a project's own tools run (in their processes) only where the operator allows it,
        # with ``code_env`` (None: this process's environment without KASAL_* settings)
        self.project_code = project_code
        self.project_tool_timeout_s = project_tool_timeout_s
        self.code_env = code_env
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout

    def _llm(self, model: str, hooks: RunHooks, run: RunObjects,
             limits: CallLimits | None = None) -> GatewayLLM:
        return GatewayLLM(
            model,
            hooks,
            max_retries=self.max_retries,
            retry_base_delay=self.retry_base_delay,
            retry_max_delay=self.retry_max_delay,
            timeout=self.timeout,
            task_name_of=run.task_name_of,
            limits=limits,
        )

    def run(self, crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, Any],
            hooks: RunHooks) -> RunResult:
        _check_runnable(crew, agents, self.project_code)
        if hooks.cancelled():
            raise RunCancelled("the run was cancelled before it started")
        run = RunObjects()
        code = ProjectCode(
            Workspace(self.workspaces, hooks.tenant_id).root, self._code_env(),
            self.project_tool_timeout_s, lambda: _stopping(hooks, run),
        ) if self.project_code else None
        try:
            return self._kickoff(crew, agents, inputs, hooks, run, code)
        finally:
            if code is not None:
                code.close()

    def _code_env(self) -> dict[str, str]:
        if self.code_env is not None:
            return dict(self.code_env)
        return {k: v for k, v in os.environ.items() if not k.startswith("KASAL_")}

    def _kickoff(self, crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, Any],
                 hooks: RunHooks, run: RunObjects, code: ProjectCode | None) -> RunResult:
        crew_obj = self._build(crew, agents, hooks, run, code)

        def before_tool(ctx: ToolCallHookContext) -> None:
            if run.owns(ctx.agent, ctx.crew):
                run.before(ctx)
            return None

        def after_tool(ctx: ToolCallHookContext) -> None:
            if not run.owns(ctx.agent, ctx.crew):
                return None
            error, duration_ms = run.after(ctx)
            try:
                hooks.tool_used(*run.tool_key(ctx),
                                "" if ctx.tool_result is None else str(ctx.tool_result),
                                error=error, duration_ms=duration_ms)
            except Exception as error:  # CrewAI's hook dispatch swallows all but HookAborted
                raise HookAborted(reason=f"recording the tool use failed: {error}") from error
            return None

        register_before_tool_call_hook(before_tool)
        register_after_tool_call_hook(after_tool)
        try:
            output = crew_obj.kickoff(inputs=dict(inputs))
        except Exception as error:
            hooks.cancelled()  # a hook's failure (sticky) is the cause, not CrewAI's wrapper
            run.limits.raise_if_stopped()
            cancelled = _cancelled_in(error)
            if cancelled is not None and cancelled is not error:
                raise cancelled from None
            raise
        finally:
            unregister_before_tool_call_hook(before_tool)
            unregister_after_tool_call_hook(after_tool)
        hooks.cancelled()  # raises a hook's failure that CrewAI swallowed
        run.limits.raise_if_stopped()  # a coworker's, that delegation turned into text
        if not isinstance(output, CrewOutput):  # a streaming crew; this one never streams
            raise TypeError(f"unexpected kickoff result {type(output).__name__}")
        return RunResult(output=str(output.raw))

    def _build(
        self, spec: CrewSpec, agent_specs: dict[str, AgentSpec], hooks: RunHooks,
        run: RunObjects, code: ProjectCode | None = None,
    ) -> Crew:
        built: dict[str, Agent] = {}
        for agent_id in spec.agents:
            agent_spec = agent_specs[agent_id]
            agent = KnowledgeAgent(
                role=agent_spec.role,
                goal=agent_spec.goal,
                backstory=agent_spec.backstory,
                llm=self._llm(agent_spec.llm, hooks, run, CallLimits(
                    run.limits, agent_spec.max_rpm, agent_spec.max_execution_time)),
                tools=[replaying(tool, hooks, run) for tool in build_tools(
                    agent_spec.tools, Workspace(self.workspaces, hooks.tenant_id),
                    agent_spec.tool_config, hooks, agent_spec.project_tools, code)],
                allow_delegation=agent_spec.allow_delegation,
                max_iter=agent_spec.max_iter,  # max_rpm, max_execution_time: CallLimits
                # recall-only knowledge over the log's projection (adapters.crewai.knowledge)
                knowledge=build_knowledge(hooks, agent_spec.knowledge_sources, agent_spec.role),
                # the gateway retries transient model errors; CrewAI re-running a whole
                # task after any error would pay for its calls twice
                max_retry_limit=0,
                verbose=False,
            )
            agent._kasal_limits = run.limits
            built[agent_id] = agent
            run.agent_ids.add(id(agent))

        def on_start(task: _HookedTask) -> None:
            name = run.task_names[id(task)]
            if hooks.cancelled():
                raise RunCancelled(f"the run was cancelled before task {name!r}")
            run.limits.raise_if_stopped()
            run.current_task = name
            run.limits.task_started(id(task))
            hooks.task_started(name)

        schemas = {t.name: t.output_schema for t in spec.tasks if t.output_schema is not None}

        def on_done(task: _HookedTask, output: TaskOutput) -> None:
            name = run.task_names[id(task)]
            schema = schemas.get(name)
            if schema is None:
                hooks.task_completed(name, str(output.raw))
            else:  # Kasal validates the answer itself: no converter call to the model
                checked = structured(str(output.raw), schema)
                hooks.task_completed(name, str(output.raw), checked.value, checked.problem)
            if hooks.cancelled():
                raise RunCancelled(f"the run was cancelled after task {name!r}")

        tasks: dict[str, _HookedTask] = {}
        for task_spec in spec.tasks:
            task = _HookedTask(**_task_fields(task_spec, built, tasks))
            task._kasal_on_start = on_start
            task._kasal_on_done = on_done
            tasks[task_spec.name] = task
            run.task_names[id(task)] = task_spec.name

        hierarchical = spec.process == "hierarchical"
        crew = Crew(
            name=spec.name,
            agents=list(built.values()),
            tasks=list(tasks.values()),
            process=Process.hierarchical if hierarchical else Process.sequential,
            manager_llm=self._llm(spec.manager_llm, hooks, run, CallLimits(run.limits))
            if hierarchical and spec.manager_llm
            else None,
            # recall-only crew memory over the log's projection (adapters.crewai.memory)
            memory=build_memory(hooks, spec.name) if spec.memory else False,
            knowledge=build_knowledge(hooks, spec.knowledge_sources, "crew"),
            verbose=False,
        )
        run.crew = crew
        return crew


def _stopping(hooks: RunHooks, run: RunObjects) -> bool:
    """Whether the run must stop: cancelled, timed out, or failed in a hook."""
    if run.limits.timed_out is not None or run.limits.failure is not None:
        return True
    try:
        return hooks.cancelled()
    except Exception:  # a hook's failure (sticky): the run stops with it
        return True


def _task_fields(
    spec: TaskSpec, agents: dict[str, Agent], earlier: dict[str, _HookedTask]
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "expected_output": spec.expected_output if spec.output_schema is None
        else instructed(spec.expected_output, spec.output_schema),
        "human_input": False,
    }
    if spec.agent is not None:
        fields["agent"] = agents[spec.agent]
    if spec.context:
        # named context; none named keeps CrewAI's default (the earlier tasks' outputs)
        fields["context"] = [earlier[ref] for ref in spec.context]
    return fields


def _check_runnable(crew: CrewSpec, agents: dict[str, AgentSpec],
                    allow_project_code: bool) -> None:
    """Refuse, before any model call, what a server run cannot do: the domain's own crew
    rules (a snapshot recorded before a rule existed meets it here), a snapshot missing
    agents, unknown tools."""
    missing = [agent_id for agent_id in crew.agents if agent_id not in agents]
    if missing:
        raise ValueError(f"the crew's snapshot lacks agent(s) {', '.join(missing)}")
    try:
        check_crew_spec(crew)
    except InvalidDefinition as error:
        raise ValueError(f"the crew cannot run: {error}") from None
    for agent_id in crew.agents:
        try:  # KeyError naming unknown tools
            check_tools(agents[agent_id].tools, agents[agent_id].tool_config,
                        agents[agent_id].project_tools, allow_project_code)
        except ValueError as error:
            raise ValueError(f"the crew cannot run: {error}") from None


__all__ = ["CrewAIEngine"]
