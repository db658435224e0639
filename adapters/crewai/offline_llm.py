"""A deterministic offline model, served to litellm as the custom provider ``kasal-offline``.

``litellm.completion(model="kasal-offline/default", messages=...)`` answers without any
network: the same messages always get the same answer, and every answer says that it
comes from the offline model. It speaks CrewAI's ReAct text protocol well enough to drive
real runs:

- when the prompt offers a tool named like ``calculator`` and the task holds an arithmetic
  expression, it calls it (``Action: calculator`` / ``Action Input: {"expression": ...}``);
  likewise ``current_time`` when the task asks for the time or the date, and the file
  tools when the task names a file or asks to list files, and the web tools when it names a
  URL or asks to search (``offline_tools``);
- a hierarchical crew's manager (offered ``delegate_work_to_coworker``) delegates the task
  to the coworker whose role best matches it;
- once an ``Observation:`` is in the conversation it gives the ``Final Answer:`` built on
  it; otherwise it answers at once;
- when the prompt holds recalled crew memory (CrewAI's ``# Memories from past
  conversations:``), the answer says what it remembers, so what reached the prompt is
  observable in the recorded response.

Every ``kasal-offline/<name>`` answers alike (the name is in the label). Models that
sleep, fail or rate-limit are for tests only and live with them (``tests/models.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import Choices, Message, ModelResponse, Usage

from adapters.crewai.offline_env import OFFLINE_PROVIDER
from adapters.crewai.offline_json import instance
from adapters.crewai.offline_prompt import Prompt, text_of
from adapters.crewai.offline_query import rewritten_query
from adapters.crewai.offline_tools import file_action, named_action, web_action

PROVIDER = OFFLINE_PROVIDER
DEFAULT_MODEL = f"{PROVIDER}/default"
MAX_ANSWER_CHARS = 1200

_register_lock = threading.Lock()

_ARITHMETIC_RUN = re.compile(r"[\d\s.+\-*/%()^]+")
_DATE_OR_TIME = re.compile(r"\d{4}-\d\d-\d\d|\d\d?:\d\d")
_OPERATOR_BETWEEN = re.compile(r"[\d)]\s*(?:\*\*|//|[-+*/%^])\s*[-+(]*\s*[\d.(]")
_TIME_WORDS = re.compile(r"\b(?:time|date|today|day is it|clock|timestamp)\b", re.IGNORECASE)
_PROTOCOL_WORDS = re.compile(r"(Final Answer|Action Input|Action|Observation|Thought)\s*:")
# the expected output crewai gives a coworker's delegated task: never delegate it again
_DELEGATED_TASK_MARK = "coworker asking you this"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    flat = _PROTOCOL_WORDS.sub(lambda m: f"{m.group(1)} -", flat)
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def count_tokens(text: str) -> int:
    """The offline model's token count: whitespace-separated words."""
    return len(text.split())


def request_key(model: str, messages: list[Any]) -> str:
    canonical = json.dumps(
        {"model": model, "messages": messages},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_arithmetic(text: str) -> str | None:
    """The longest arithmetic expression in ``text`` (two numbers and an operator at least)."""
    best: str | None = None
    for match in _ARITHMETIC_RUN.finditer(_DATE_OR_TIME.sub(" ", text)):
        candidate = match.group(0).strip().rstrip(".").strip()
        while candidate.count("(") > candidate.count(")") and candidate.startswith("("):
            candidate = candidate[1:].strip()
        while candidate.count(")") > candidate.count("(") and candidate.endswith(")"):
            candidate = candidate[:-1].strip()
        if _OPERATOR_BETWEEN.search(candidate) and (best is None or len(candidate) > len(best)):
            best = candidate
    return best


def _best_coworker(coworkers: tuple[str, ...], task: str) -> str:
    """The coworker whose role shares the most words (or word stems) with the task; the
    first listed on a tie."""
    words = set(re.findall(r"[a-z0-9]+", task.lower()))

    def related(a: str, b: str) -> bool:
        return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))

    def score(role: str) -> int:
        role_words = set(re.findall(r"[a-z0-9]+", role.lower()))
        return sum(1 for r in role_words if any(related(r, w) for w in words))

    best = max(score(c) for c in coworkers)
    return next(c for c in coworkers if score(c) == best)


def _act(label: str, thought: str, tool: str, arguments: dict[str, str]) -> str:
    return (
        f"Thought: [{label}] {thought}\nAction: {tool}\n"
        f"Action Input: {json.dumps(arguments, ensure_ascii=False)}"
    )


def _final(label: str, body: str, schema: dict[str, Any] | None = None) -> str:
    if schema is not None:  # JSON valid against the task's schema, saying who wrote it
        text = json.dumps(instance(schema, f"[{label}] {_one_line(body, 200)}"))
        return f"Thought: I now know the final answer\nFinal Answer: {text}"
    answer = f"[{label}] {body}"
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[: MAX_ANSWER_CHARS - 3].rstrip() + "..."
    return f"Thought: I now know the final answer\nFinal Answer: {answer}"


def answer(label: str, messages: list[Any]) -> str:
    """The offline model's reply to ``messages``: a pure function of its inputs."""
    query = rewritten_query(messages)
    if query is not None:  # CrewAI's knowledge query rewrite: no ReAct, just the query
        return query
    prompt = Prompt.parse(messages)
    task = _one_line(prompt.task, 300)

    if prompt.last_observation is not None:
        observation = _one_line(prompt.last_observation, 700)
        if prompt.last_action and "coworker" in prompt.last_action:
            return _final(label, f'The team\'s answer to "{task}": {observation}', prompt.schema)
        tool = prompt.last_action or "the tool"
        return _final(label, f'Using {tool}, the answer to "{task}" is: {observation}',
                      prompt.schema)

    delegate = prompt.tool_like("delegate")
    if delegate and prompt.coworkers and _DELEGATED_TASK_MARK not in prompt.expected:
        coworker = _best_coworker(prompt.coworkers, prompt.task)
        context = f"Expected output: {prompt.expected or 'a complete answer'}."
        if prompt.context:
            context += f" Context: {prompt.context}"
        return _act(
            label,
            f"I will delegate this task to the {coworker}.",
            delegate,
            {"task": prompt.task, "context": context, "coworker": coworker},
        )

    calculator = prompt.tool_like("calculator") or prompt.tool_like("calc")
    expression = find_arithmetic(prompt.task) if calculator else None
    if calculator and expression:
        return _act(
            label,
            f"I should compute {expression} with the {calculator} tool.",
            calculator,
            {"expression": expression},
        )

    clock = prompt.tool_like("time") or prompt.tool_like("date") or prompt.tool_like("clock")
    if clock and _TIME_WORDS.search(prompt.task):
        return _act(label, f"I need the current time from the {clock} tool.", clock, {})

    who = f"As {prompt.role}, " if prompt.role else ""
    body = f'{who}my answer to "{task}"'
    if prompt.expected:
        body += f" (expected: {_one_line(prompt.expected, 160)})"
    body += "."
    if prompt.context:
        body += f" It builds on: {_one_line(prompt.context, 300)}"
    if prompt.memories:
        body += f" It remembers: {_one_line(prompt.memories, 400)}"
    if prompt.knowledge:
        body += f" It knows: {_one_line(prompt.knowledge, 400)}"
    action = file_action(prompt.task, prompt.tool_like, body) or web_action(
        prompt.task, prompt.tool_like, prompt.takes) or named_action(
        prompt.task, prompt.tools, prompt.arguments)
    if action is not None:
        return _act(label, *action)
    return _final(label, body, prompt.schema)


def _apply_stop(text: str, stop: Any) -> str:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return text[:cut].rstrip() if cut >= 0 else text


class OfflineModel(CustomLLM):
    """The ``kasal-offline`` litellm provider: ``kasal-offline/<name>`` (see module doc)."""

    provider = PROVIDER

    def respond(self, model: str, messages: list[Any], stop: Any) -> ModelResponse:
        name = model.split("/", 1)[1] if "/" in model else model
        label = f"{self.provider}/{name}"
        text = _apply_stop(answer(label, messages), stop)
        prompt_tokens = sum(
            count_tokens(text_of(m.get("content"))) for m in messages if isinstance(m, dict)
        )
        completion_tokens = count_tokens(text)
        return ModelResponse(
            model=label,
            choices=[
                Choices(
                    index=0,
                    finish_reason="stop",
                    message=Message(role="assistant", content=text),
                )
            ],
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
        )

    # litellm calls these with keywords (model, messages, optional_params, ...)
    def completion(self, model: str, messages: list[Any], *_: Any, **kwargs: Any) -> ModelResponse:
        return self.respond(model, messages, (kwargs.get("optional_params") or {}).get("stop"))

    async def acompletion(
        self, model: str, messages: list[Any], *_: Any, **kwargs: Any
    ) -> ModelResponse:
        return self.completion(model, messages, **kwargs)


def register_offline_provider(model: OfflineModel | None = None) -> None:
    """Make ``kasal-offline/*`` (or ``model``'s provider) available to litellm (idempotent,
    thread-safe)."""
    handler = model or OfflineModel()
    with _register_lock:
        providers = litellm.custom_provider_map
        if not any(entry.get("provider") == handler.provider for entry in providers):
            providers.append({"provider": handler.provider, "custom_handler": handler})


def is_offline_model(model: str) -> bool:
    return model.startswith(f"{PROVIDER}/")


__all__ = [
    "DEFAULT_MODEL",
    "PROVIDER",
    "OfflineModel",
    "answer",
    "count_tokens",
    "find_arithmetic",
    "is_offline_model",
    "register_offline_provider",
]
