"""CrewAIEngine: real CrewAI crews on the offline model, observed through the run hooks."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import litellm
import pytest
from crewai.hooks import get_after_tool_call_hooks
from crewai.utilities.types import LLMMessage
from litellm.exceptions import InternalServerError, RateLimitError

from adapters.crewai.engine import CrewAIEngine
from adapters.crewai.llm_gateway import GatewayLLM
from adapters.crewai.workspace import Workspace
from domain.crew import TaskSpec
from streams.engine import RunCancelled

from .support import RecordingHooks, ToolUse, agent, crew, task

HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def engine(tmp_path: Path) -> CrewAIEngine:
    return CrewAIEngine(max_retries=2, retry_base_delay=0.01, retry_max_delay=0.05,
                        workspaces=tmp_path / "workspaces")


def test_sequential_crew_reports_every_step_in_order(engine: CrewAIEngine) -> None:
    agents = {"r": agent("Researcher"), "w": agent("Writer")}
    spec = crew(
        task("research", "Research {topic} and list the key facts.", "r", expected="Facts."),
        task("write", "Write a briefing on {topic}.", "w", context=("research",)),
        agents=("r", "w"),
    )
    hooks = RecordingHooks()
    hooks_before = len(get_after_tool_call_hooks())

    result = engine.run(spec, agents, {"topic": "event sourcing"}, hooks)

    assert "kasal-offline" in result.output
    assert "Write a briefing on event sourcing" in result.output  # inputs were filled in
    assert hooks.started == ["research", "write"]
    assert [name for name, _ in hooks.completed] == ["research", "write"]
    assert hooks.completed[-1][1] == result.output
    assert "[kasal-offline/default]" in hooks.completed[0][1]
    assert hooks.kinds() == [
        ("task_started", "research"),
        ("llm_call", "research"),
        ("task_completed", "research"),
        ("task_started", "write"),
        ("llm_call", "write"),
        ("task_completed", "write"),
    ]
    calls = hooks.calls
    assert [c.agent_role for c in calls] == ["Researcher", "Writer"]
    for call in calls:
        assert HEX64.fullmatch(call.request_hash)
        assert call.prompt_tokens > 0 and call.completion_tokens > 0
        assert call.model == "kasal-offline/default"
        assert call.attempts == 1 and call.cost == 0.0 and call.latency_ms > 0
        assert "Final Answer: [kasal-offline/default]" in call.response
    assert "Research event sourcing" in calls[1].response  # the context reached task 2
    assert len(get_after_tool_call_hooks()) == hooks_before  # the run's tool hook is gone


def test_hierarchical_crew_delegates_through_the_manager(engine: CrewAIEngine) -> None:
    agents = {"r": agent("Researcher"), "m": agent("Mathematician", tools=("calculator",))}
    spec = crew(
        task("facts", "Research the history of the abacus.", None, expected="Notes."),
        task("sum", "Ask the Mathematician for 12 * 12 + 1.", None, expected="A number."),
        agents=("r", "m"),
        process="hierarchical",
        manager_llm="kasal-offline/default",
    )
    hooks = RecordingHooks()

    result = engine.run(spec, agents, {}, hooks)

    assert "kasal-offline" in result.output and "145" in result.output
    assert hooks.started == ["facts", "sum"]
    assert [name for name, _ in hooks.completed] == ["facts", "sum"]
    delegations = [t for t in hooks.tools if t.tool == "delegate_work_to_coworker"]
    assert [t.task_name for t in delegations] == ["facts", "sum"]
    assert '"coworker": "Researcher"' in delegations[0].tool_input
    assert '"coworker": "Mathematician"' in delegations[1].tool_input
    # the coworker's own tool use and calls belong to the manager's current task
    assert [(t.task_name, t.output) for t in hooks.tools if t.tool == "calculator"] == [
        ("sum", "145")
    ]
    roles = {(c.task_name, c.agent_role) for c in hooks.calls}
    assert {("facts", "Crew Manager"), ("facts", "Researcher")} <= roles
    assert {("sum", "Crew Manager"), ("sum", "Mathematician")} <= roles
    kinds = hooks.kinds()
    assert kinds[0] == ("task_started", "facts") and kinds[-1] == ("task_completed", "sum")
    assert kinds.index(("task_completed", "facts")) < kinds.index(("task_started", "sum"))


def test_agent_uses_the_calculator(engine: CrewAIEngine) -> None:
    agents = {"m": agent("Mathematician", tools=("calculator",))}
    spec = crew(task("multiply", "What is 17 * 23?", "m", expected="The number."), agents=("m",))
    hooks = RecordingHooks()

    result = engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert used == ToolUse("multiply", "calculator", '{"expression": "17 * 23"}', "391",
                           error=None, duration_ms=used.duration_ms)
    assert isinstance(used.duration_ms, int) and used.duration_ms >= 0
    assert "391" in result.output
    assert hooks.kinds() == [
        ("task_started", "multiply"),
        ("llm_call", "multiply"),
        ("tool_used", "multiply"),
        ("llm_call", "multiply"),
        ("task_completed", "multiply"),
    ]
    assert "Action: calculator" in hooks.calls[0].response


def test_a_failed_tool_call_is_recorded_with_its_error(engine: CrewAIEngine,
                                                      tmp_path: Path) -> None:
    """A tool that reports a failure (the calculator's ToolFailure, a file tool's refused
    path) and one that raises are each recorded with why; the agent reads the same text."""
    agents = {"m": agent("Mathematician", tools=("calculator",)),
              "r": agent("Reader", tools=("file_read",))}
    spec = crew(task("divide", "What is 7 / 0?", "m", expected="The number."),
                task("read", "Read the file missing.txt and summarise it.", "r"),
                agents=("m", "r"))
    hooks = RecordingHooks()

    engine.run(spec, agents, {}, hooks)

    by_tool = {t.tool: t for t in hooks.tools}
    calc = by_tool["calculator"]
    assert calc.error is not None and "division by zero" in calc.error
    assert calc.output.startswith("calculator error: division by zero")  # what the agent read
    read = by_tool["read_a_files_content"]
    assert read.error is not None and "is not in the workspace" in read.error
    assert read.output == read.error
    assert all(isinstance(t.duration_ms, int) and t.duration_ms >= 0 for t in hooks.tools)


def test_a_tool_that_raises_is_recorded_with_the_exception(tmp_path: Path) -> None:
    """A tool's exception: CrewAI turns it into text for the agent, Kasal records its type
    and message as the call's error."""
    from crewai.tools import BaseTool

    from adapters.crewai.tool_calls import RunObjects, replaying

    class Broken(BaseTool):
        name: str = "broken"
        description: str = "always fails"

        def _run(self) -> str:
            raise RuntimeError("the disk is on fire")

    hooks, run = RecordingHooks(), RunObjects()
    tool = replaying(Broken(), hooks, run)
    run.calling.key, run.calling.started, run.calling.error = (None, "broken", "{}"), 0.0, None
    with pytest.raises(RuntimeError):
        tool._run()
    assert run.calling.error == "RuntimeError: the disk is on fire"


def test_runs_are_deterministic_and_replay_from_recorded_responses(
    engine: CrewAIEngine,
) -> None:
    agents = {"m": agent("Mathematician", tools=("calculator",)), "w": agent("Writer")}
    spec = crew(
        task("multiply", "What is 6 * 7?", "m"),
        task("report", "Report the {what}.", "w", context=("multiply",)),
        agents=("m", "w"),
    )
    first, second = RecordingHooks(), RecordingHooks()
    result_1 = engine.run(spec, agents, {"what": "product"}, first)
    result_2 = engine.run(spec, agents, {"what": "product"}, second)
    hashes = [c.request_hash for c in first.calls]
    assert len(hashes) == 3 and len(set(hashes)) == 3
    assert [c.request_hash for c in second.calls] == hashes
    assert [c.response for c in second.calls] == [c.response for c in first.calls]
    assert result_2.output == result_1.output

    resumed = RecordingHooks(recorded={c.request_hash: c.response for c in first.calls})
    result_3 = engine.run(spec, agents, {"what": "product"}, resumed)

    assert resumed.calls == []  # nothing paid for twice
    assert resumed.lookups == hashes
    assert result_3.output == result_1.output
    assert resumed.started == ["multiply", "report"]
    assert [t.output for t in resumed.tools] == ["42"]  # reported: the hooks skip recorded

    partly = RecordingHooks(recorded={hashes[0]: first.calls[0].response})
    engine.run(spec, agents, {"what": "product"}, partly)
    assert [c.request_hash for c in partly.calls] == hashes[1:]


def test_a_resumed_run_gets_its_tools_results_from_the_log_instead_of_calling_them(
    engine: CrewAIEngine, tmp_path: Path,
) -> None:
    """A tool with an effect (file_write) runs once: resumed with the calls and the tool
    results of the first run, the file is not written again, and nothing is paid for."""
    agents = {"f": agent("Filer", tools=("file_write",))}
    spec = crew(task("save", "Write a short note and save it as out/note.md.", "f"),
                agents=("f",))
    first = RecordingHooks()
    engine.run(spec, agents, {}, first)
    (used,) = first.tools
    assert used.tool == "file_writer_tool"
    written = Workspace(tmp_path / "workspaces", "acme").root / "out" / "note.md"
    assert written.is_file()
    written.unlink()

    resumed = RecordingHooks(
        recorded={c.request_hash: c.response for c in first.calls},
        recorded_tools={(used.task_name, used.tool, used.tool_input): [used.output]})
    engine.run(spec, agents, {}, resumed)
    assert not written.exists()  # answered from the log: the tool did not run
    # reported as made (the recorder knows it is logged), its duration the replay's own
    assert [replace(t, duration_ms=None) for t in resumed.tools] == [
        replace(used, duration_ms=None)]
    assert resumed.calls == []  # the same result, so the same requests: all replayed

    again = RecordingHooks(recorded={c.request_hash: c.response for c in first.calls})
    engine.run(spec, agents, {}, again)  # no recorded tool result: the tool runs
    assert written.is_file()


def test_an_output_file_is_never_written_by_crewai(
    engine: CrewAIEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kasal keeps a task's output_file as an artifact (the domain's ArtifactStored): CrewAI,
    which would write it relative to the working directory, is never given it."""
    monkeypatch.chdir(tmp_path)
    agents = {"w": agent("Writer")}
    spec = crew(replace(task("note", "Write a note.", "w"), output_file="out/note.md"),
                agents=("w",))
    hooks = RecordingHooks()
    engine.run(spec, agents, {}, hooks)
    assert [name for name, _ in hooks.completed] == ["note"]
    assert not list(tmp_path.rglob("note.md"))


def test_cancel_after_the_first_call_stops_the_run(engine: CrewAIEngine) -> None:
    agents = {"m": agent("Mathematician", tools=("calculator",)), "w": agent("Writer")}
    spec = crew(
        task("multiply", "What is 17 * 23?", "m"),
        task("report", "Report it.", "w"),
        agents=("m", "w"),
    )
    hooks = RecordingHooks(cancel_after_calls=1)

    with pytest.raises(RunCancelled):
        engine.run(spec, agents, {}, hooks)

    assert len(hooks.calls) == 1
    assert hooks.started == ["multiply"] and hooks.completed == []


def test_cancel_between_tasks(engine: CrewAIEngine) -> None:
    agents = {"w": agent("Writer")}
    spec = crew(task("one", "Say one.", "w"), task("two", "Say two.", "w"), agents=("w",))
    hooks = RecordingHooks(cancel_after_calls=1)

    with pytest.raises(RunCancelled):
        engine.run(spec, agents, {}, hooks)

    assert hooks.started == ["one"] and [n for n, _ in hooks.completed] == ["one"]


def test_cancelled_before_start_makes_no_call(engine: CrewAIEngine) -> None:
    agents = {"w": agent("Writer")}
    hooks = RecordingHooks()
    hooks.cancel()
    with pytest.raises(RunCancelled):
        engine.run(crew(task("one", "Say one.", "w"), agents=("w",)), agents, {}, hooks)
    assert hooks.log == []


def test_a_failing_model_fails_the_run_with_its_cause(engine: CrewAIEngine) -> None:
    agents = {"w": agent("Writer", llm="kasal-test/error")}
    hooks = RecordingHooks()

    with pytest.raises(InternalServerError, match="simulated provider failure"):
        engine.run(crew(task("one", "Say one.", "w"), agents=("w",)), agents, {}, hooks)

    assert hooks.calls == [] and hooks.completed == []


def test_rate_limits_are_retried_and_counted(engine: CrewAIEngine) -> None:
    agents = {"w": agent("Writer", llm="kasal-test/flaky")}
    unique = uuid.uuid4().hex  # the flaky model fails the first call of each new request
    spec = crew(
        task("one", f"Say {unique}.", "w"), task("two", f"Repeat {unique}.", "w"), agents=("w",)
    )
    hooks = RecordingHooks()

    result = engine.run(spec, agents, {}, hooks)

    assert "[kasal-test/flaky]" in result.output
    assert [c.attempts for c in hooks.calls] == [2, 2]


def test_retries_give_up_after_max_retries() -> None:
    hooks = RecordingHooks()
    llm = GatewayLLM("kasal-test/flaky", hooks, max_retries=0)
    with pytest.raises(RateLimitError):
        llm.call(f"Current Task: {uuid.uuid4().hex}")
    assert hooks.calls == []
    llm = GatewayLLM("kasal-test/flaky", hooks, max_retries=1, retry_base_delay=0.01)
    text = llm.call(f"Current Task: {uuid.uuid4().hex}")
    assert "[kasal-test/flaky]" in text and hooks.calls[0].attempts == 2


def test_gateway_answers_recorded_requests_without_the_model() -> None:
    hooks = RecordingHooks()
    llm = GatewayLLM("kasal-test/error", hooks)  # would fail if it were called
    messages: list[LLMMessage] = [{"role": "user", "content": "Current Task: recorded"}]
    with pytest.raises(InternalServerError):
        llm.call(messages)
    hash_ = hooks.lookups[-1]
    hooks.recorded[hash_] = "Final Answer: from the log"
    assert llm.call(messages) == "Final Answer: from the log"
    assert hooks.calls == []


def test_concurrent_runs_never_mix(engine: CrewAIEngine) -> None:
    specs = {
        "a": (
            {"ma": agent("Alpha Mathematician", llm="kasal-test/slow", tools=("calculator",))},
            crew(
                task("a-multiply", "What is 11 * 11?", "ma"),
                task("a-report", "Report.", "ma"),
                agents=("ma",),
            ),
        ),
        "b": (
            {"cb": agent("Beta Clerk", llm="kasal-test/slow", tools=("current_time",))},
            crew(
                task("b-clock", "What time is it?", "cb"),
                task("b-report", "Report.", "cb"),
                agents=("cb",),
            ),
        ),
    }
    hooks = {key: RecordingHooks() for key in specs}
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(specs))

    def run(key: str) -> None:
        agents, spec = specs[key]
        barrier.wait()
        try:
            results[key] = engine.run(spec, agents, {}, hooks[key]).output
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(key,)) for key in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and set(results) == {"a", "b"}

    a, b = hooks["a"], hooks["b"]
    assert a.started == ["a-multiply", "a-report"] and b.started == ["b-clock", "b-report"]
    assert [(t.task_name, t.tool, t.output) for t in a.tools] == [
        ("a-multiply", "calculator", "121")
    ]
    assert [(t.task_name, t.tool) for t in b.tools] == [("b-clock", "current_time")]
    assert {c.agent_role for c in a.calls} == {"Alpha Mathematician"}
    assert {c.agent_role for c in b.calls} == {"Beta Clerk"}
    assert {c.task_name for c in a.calls} == {"a-multiply", "a-report"}
    assert {c.task_name for c in b.calls} == {"b-clock", "b-report"}
    assert "Beta" not in results["a"] and "Alpha" not in results["b"]


def test_refuses_what_a_server_cannot_run(engine: CrewAIEngine) -> None:
    agents = {"w": agent("Writer")}
    asking = TaskSpec(
        name="ask", description="Ask me.", expected_output="x", agent="w", human_input=True
    )
    hooks = RecordingHooks()
    with pytest.raises(ValueError, match="human input"):
        engine.run(crew(asking, agents=("w",)), agents, {}, hooks)
    with pytest.raises(KeyError, match="web_search"):
        engine.run(
            crew(task("t", "Search.", "w"), agents=("w",)),
            {"w": agent("Writer", tools=("web_search",))},
            {},
            hooks,
        )
    assert hooks.log == []


class FailingHooks(RecordingHooks):
    """Recording fails at one kind of step (the log is down); as the ``RunHooks`` contract
    asks, the failure is sticky: every later hook raises it again."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing
        self.failure: OSError | None = None

    def _add(self, kind: str, value: object) -> None:
        self._raise_failure()
        if kind == self.failing:
            self.failure = OSError(f"the log refused {kind}")
            raise self.failure
        super()._add(kind, value)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def cancelled(self) -> bool:
        self._raise_failure()
        return super().cancelled()

    def recorded_response(self, request_hash: str) -> str | None:
        self._raise_failure()
        return super().recorded_response(request_hash)


@pytest.mark.parametrize("failing", ["task_started", "llm_call", "tool_used", "task_completed"])
def test_a_step_that_cannot_be_recorded_fails_the_run(engine: CrewAIEngine, failing: str) -> None:
    agents = {"r": agent("Researcher"), "m": agent("Mathematician", tools=("calculator",))}
    spec = crew(
        task("sum", "Ask the Mathematician for 2 + 3.", None),
        task("later", "Summarise.", None),
        agents=("r", "m"),
        process="hierarchical",
        manager_llm="kasal-offline/default",
    )
    hooks = FailingHooks(failing)

    with pytest.raises(OSError, match=f"the log refused {failing}"):
        engine.run(spec, agents, {}, hooks)

    assert "later" not in hooks.started
    # nothing went on after the failure: no request was made twice (CrewAI's manager
    # would retry its task), none after a failed model call
    assert len(hooks.lookups) == len(set(hooks.lookups))
    if failing == "llm_call":
        assert len(hooks.lookups) == 1


def test_gateway_request_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, object]] = []
    real = litellm.completion

    def spy(**kwargs: object) -> object:
        seen.append(kwargs)
        return real(model="kasal-offline/default", messages=kwargs["messages"])

    monkeypatch.setattr(litellm, "completion", spy)
    hooks = RecordingHooks()
    plain = GatewayLLM("openai/gpt-4o-mini", hooks, stop=["\nObservation:"])
    plain.call("Current Task: hello")
    assert seen[0] == {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "Current Task: hello"}],
        "stop": ["\nObservation:"],
    }
    keyed = GatewayLLM("openai/gpt-4o-mini", hooks, api_key="sk-secret", api_base="http://x")
    keyed.call("Current Task: hello")
    assert seen[1]["api_key"] == "sk-secret" and seen[1]["api_base"] == "http://x"
    assert "sk-secret" not in repr(keyed) and "sk-secret" not in keyed.model_dump_json()
    assert all("sk-secret" not in repr(call) for call in hooks.calls)
    assert hooks.calls[0].request_hash != hooks.calls[1].request_hash  # stop is hashed


def test_a_memory_crew_recalls_through_the_hooks_into_identical_prompts(
    engine: CrewAIEngine,
) -> None:
    spec = replace(crew(task("research", "Research {topic}.", "r"), agents=("r",)),
                   memory=True)
    memories = ["research: penguins breed in winter", "research: krill"]
    first, again = RecordingHooks(memories=memories), RecordingHooks(memories=memories)

    engine.run(spec, {"r": agent("Researcher")}, {"topic": "penguins"}, first)
    engine.run(spec, {"r": agent("Researcher")}, {"topic": "penguins"}, again)

    assert first.of("recall_memory") == [("Research penguins.", 5)]
    response = first.calls[0].response
    assert "It remembers: - (score=1.00) research: penguins breed in winter" in response
    assert "(score=0.50) research: krill" in response
    # the same recall builds the same prompt: a resumed run would replay its calls
    assert [c.request_hash for c in again.calls] == [c.request_hash for c in first.calls]

    plain = RecordingHooks(memories=memories)
    engine.run(replace(spec, memory=False), {"r": agent("Researcher")}, {"topic": "x"}, plain)
    assert plain.of("recall_memory") == [] and "remembers" not in plain.calls[0].response


def test_an_agents_limits_are_kept_by_the_gateway_and_a_task_past_its_time_fails(
    engine: CrewAIEngine,
) -> None:
    """max_rpm and max_execution_time are kept by Kasal's gateway before each paid call
    (adapters/crewai/call_limits.py), not by CrewAI: a task past its time makes no more
    model calls and fails naming the limit."""
    from dataclasses import replace

    from adapters.crewai.tool_calls import RunObjects

    limited = replace(agent("Researcher"), max_rpm=7, max_execution_time=30)
    spec = crew(task("research", "Research {topic}.", "r"), agents=("r",))
    built = engine._build(spec, {"r": limited}, RecordingHooks(), RunObjects())
    limits = built.agents[0].llm._limits  # type: ignore[union-attr]
    assert (limits.max_rpm, limits.max_execution_time) == (7, 30)
    assert built.agents[0].max_rpm is None  # CrewAI's own (a minute's sleep) stays off

    # the first call (an Action for the calculator) takes 2.5 s: past the 1 s limit, the
    # second call is not made
    sleepy = replace(agent("Calculator", llm="kasal-test/sleepy", tools=("calculator",)),
                     max_execution_time=1)
    hooks = RecordingHooks()
    spec = crew(task("sum", "What is 1234 * 5678?", "r"), agents=("r",))
    with pytest.raises(Exception, match="ran past its agent's max_execution_time of 1 s"):
        engine.run(spec, {"r": sleepy}, {}, hooks)
    assert len(hooks.calls) == 1


def test_the_gateways_rate_limit_waits_for_paid_calls_only_and_honours_a_cancel() -> None:
    import threading

    from adapters.crewai.call_limits import CallLimits, RunLimits

    hooks = RecordingHooks()
    llm = GatewayLLM("kasal-offline/default", hooks, limits=CallLimits(RunLimits(), max_rpm=1))
    first: list[LLMMessage] = [{"role": "user", "content": "Current Task: one"}]
    llm.call(first)  # the minute's one paid call
    hooks.recorded[hooks.lookups[-1]] = "Final Answer: from the log"
    assert llm.call(first) == "Final Answer: from the log"  # replayed: no wait, not counted
    threading.Timer(0.5, hooks.cancel).start()
    with pytest.raises(RunCancelled):  # waiting for the next minute, then cancelled
        llm.call([{"role": "user", "content": "Current Task: two"}])
    assert len(hooks.calls) == 1


def test_a_coworkers_timeout_fails_the_run_though_delegation_hands_it_back_as_text(
    engine: CrewAIEngine,
) -> None:
    """CrewAI's delegation tool returns a coworker's error to the manager as text: the
    timeout stays the run's, so the manager's next call raises it and the run fails."""
    from dataclasses import replace

    # the writer's first call (an Action for the calculator) takes 2.5 s: its second is past
    # its 1 s
    agents = {"w": replace(agent("Writer", llm="kasal-test/sleepy", tools=("calculator",)),
                           max_execution_time=1),
              "e": agent("Editor")}
    spec = crew(task("draft", "Write what 1234 * 5678 is, about {topic}.", None),
                agents=("w", "e"),
                process="hierarchical", manager_llm="kasal-offline/default")
    hooks = RecordingHooks()
    with pytest.raises(Exception, match="ran past its agent's max_execution_time of 1 s"):
        engine.run(spec, agents, {"topic": "owls"}, hooks)


def test_an_agents_and_a_crews_knowledge_reach_the_task_as_crewai_gives_it(
    engine: CrewAIEngine,
) -> None:
    """CrewAI's own knowledge retrieval, over Kasal's recall: the agent's model rewrites the
    task into a query (a recorded call), the agent's sources are searched (5) and then the
    crew's (3), and both reach the task's prompt; nothing is embedded or saved by CrewAI."""
    expert = replace(agent("Owl expert"), knowledge_sources=("k1",))
    spec = replace(crew(task("facts", "Tell me how barn owls hunt.", "a", expected="Two lines."),
                        agents=("a",)), knowledge_sources=("k2", "k3"))
    hooks = RecordingHooks(knowledge={"k1": ["Barn owls hunt by sound alone."],
                                      "k3": ["Owls swallow prey whole."]})

    result = engine.run(spec, {"a": expert}, {}, hooks)

    assert hooks.of("recall_knowledge") == [
        (("k1",), "Tell me how barn owls hunt.", 5),
        (("k2", "k3"), "Tell me how barn owls hunt.", 3)]
    rewrite, answer = hooks.calls
    assert rewrite.response == "Tell me how barn owls hunt." and rewrite.task_name == "facts"
    assert "It knows: Barn owls hunt by sound alone. Owls swallow prey whole." in answer.response
    assert result.output.endswith("It knows: Barn owls hunt by sound alone. Owls swallow "
                                  "prey whole.")
    resumed = RecordingHooks(knowledge=hooks.knowledge,
                             recorded={c.request_hash: c.response for c in hooks.calls})
    assert engine.run(spec, {"a": expert}, {}, resumed).output == result.output
    assert resumed.calls == []  # the same knowledge, so the same prompts: all replayed


def test_a_knowledge_recall_that_fails_fails_the_run(engine: CrewAIEngine) -> None:
    """CrewAI turns a failed knowledge search into "no knowledge"; Kasal's does not let it."""

    class NoIndex(RecordingHooks):
        def recall_knowledge(self, source_ids: Sequence[str], query: str,
                             limit: int) -> list[str]:
            raise RuntimeError("the vector index is away")

    spec = replace(crew(task("facts", "Tell me about owls.", "a"), agents=("a",)),
                   knowledge_sources=("k1",))
    with pytest.raises(Exception, match="recalling knowledge failed: the vector index is away"):
        engine.run(spec, {"a": agent("Owl expert")}, {}, NoIndex())


def test_a_knowledge_recall_that_fails_in_a_delegated_task_fails_the_run(
    engine: CrewAIEngine,
) -> None:
    """CrewAI's delegation tool turns a coworker's error into text for the manager; a failed
    recall is sticky in Kasal's recorder, so the run still fails (here: a hooks stand-in
    whose failure is sticky the same way)."""

    class StickyNoIndex(RecordingHooks):
        failed = False

        def recall_knowledge(self, source_ids: Sequence[str], query: str,
                             limit: int) -> list[str]:
            self.failed = True
            raise RuntimeError("the vector index is away")

        def cancelled(self) -> bool:
            if self.failed:
                raise RuntimeError("recalling the crew's knowledge failed: the index is away")
            return super().cancelled()

    researcher = replace(agent("Researcher"), knowledge_sources=("k1",))
    spec = crew(task("facts", "Research the history of the abacus.", None, expected="Notes."),
                agents=("r",), process="hierarchical", manager_llm="kasal-offline/default")
    with pytest.raises(Exception, match="recalling the crew's knowledge failed"):
        engine.run(spec, {"r": researcher}, {}, StickyNoIndex())


def refuse_knowledge_rewrites(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model refuses CrewAI's knowledge query rewrite (and answers everything else)."""
    from adapters.crewai.offline_query import REWRITE_MARK

    original = GatewayLLM.call

    def failing_rewrite(self: GatewayLLM, messages: object, *args: object,
                        **kwargs: object) -> object:
        if REWRITE_MARK in str(messages):
            raise RuntimeError("the provider refused the rewrite")
        return original(self, messages, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(GatewayLLM, "call", failing_rewrite)


def test_a_knowledge_query_the_model_does_not_answer_fails_the_task(
    engine: CrewAIEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CrewAI searches nothing when the rewrite call fails; Kasal's agent fails instead."""
    refuse_knowledge_rewrites(monkeypatch)
    hooks = RecordingHooks(knowledge={"k1": ["Owls hunt at night."]})
    spec = crew(task("facts", "Tell me about owls.", "a"), agents=("a",))
    expert = replace(agent("Owl expert"), knowledge_sources=("k1",))
    with pytest.raises(Exception, match="did not answer CrewAI's knowledge search query"):
        engine.run(spec, {"a": expert}, {}, hooks)
    assert hooks.of("recall_knowledge") == []


def test_a_knowledge_query_that_fails_in_a_delegated_task_fails_the_run(
    engine: CrewAIEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delegation tool turns the coworker's failure into text for the manager; the run
    still fails, at its next model call or its end."""
    refuse_knowledge_rewrites(monkeypatch)
    researcher = replace(agent("Researcher"), knowledge_sources=("k1",))
    spec = crew(task("facts", "Research the history of the abacus.", None, expected="Notes."),
                agents=("r",), process="hierarchical", manager_llm="kasal-offline/default")
    hooks = RecordingHooks(knowledge={"k1": ["The abacus is old."]})
    with pytest.raises(Exception, match="did not answer CrewAI's knowledge search query"):
        engine.run(spec, {"r": researcher}, {}, hooks)
