"""What the offline model reads out of CrewAI's messages (``Prompt``): the agent's role,
its tools and their arguments, the task, its expected output and context, the memories and
knowledge CrewAI added, the coworkers, and the last action and observation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.crewai.structured import schema_in

_TOOL_LIST = re.compile(r"only one name of \[([^\]]*)\]")
_TOOL_NAME = re.compile(r"^Tool Name: *(\S[^\n]*)$", re.MULTILINE)
_ROLE = re.compile(r"^You are ([^\n]+?)\.(?: |\n|$)")
_TASK = re.compile(
    r"Current Task: (.*?)(?:\n\nThis is the expected criteria|\n\nThis is the context|"
    r"\n\nBegin!|\n\nProvide your complete response|\Z)",
    re.DOTALL,
)
_EXPECTED = re.compile(r"This is the expected criteria for your final answer: ([^\n]*)")
_CONTEXT = re.compile(
    r"This is the context you're working with:\n(.*?)"
    r"(?:\n\nBegin!|\n\nProvide your complete response|\n\n# Memories from past|"
    r"Additional Information: |\Z)",
    re.DOTALL,
)
_MEMORIES = re.compile(
    r"# Memories from past conversations:\n(?:Relevant memories:\n)?(.*?)"
    r"(?:\n\nIMPORTANT:|\n\nBegin!|\Z)",
    re.DOTALL,
)
_COWORKERS = re.compile(r"to one of the following coworkers: ([^\n]*)")
_ACTION = re.compile(r"^Action: *([^\n]+)$", re.MULTILINE)
_OBSERVATION = re.compile(r"\nObservation: *(.*)\Z", re.DOTALL)
_KNOWLEDGE = re.compile(r"Additional Information: (.*?)(?=Additional Information: |\n\n|\Z)",
                        re.DOTALL)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return "" if content is None else str(content)


@dataclass(frozen=True)
class Prompt:
    """What the model reads out of CrewAI's messages."""

    role: str | None
    tools: tuple[str, ...]
    task: str
    expected: str
    context: str
    memories: str
    knowledge: str  # what CrewAI's knowledge retrieval added ("Additional Information: ...")
    coworkers: tuple[str, ...]
    last_action: str | None
    last_observation: str | None
    schema: dict[str, Any] | None = None  # the task's output schema (adapters.crewai.structured)
    everything: str = ""  # every message's text (the tools' descriptions among them)

    @classmethod
    def parse(cls, messages: list[Any]) -> Prompt:
        texts = [
            (str(m.get("role", "")), text_of(m.get("content")))
            for m in messages
            if isinstance(m, dict)
        ]
        system = next((t for r, t in texts if r == "system"), "")
        everything = "\n".join(t for _, t in texts)
        user = next((t for r, t in texts if r == "user"), everything)

        tool_list = _TOOL_LIST.search(everything)
        if tool_list:
            tools = tuple(n.strip() for n in tool_list.group(1).split(",") if n.strip())
        else:
            tools = tuple(dict.fromkeys(n.strip() for n in _TOOL_NAME.findall(everything)))
        role = _ROLE.search(system.strip())
        task = _TASK.search(user)
        expected = _EXPECTED.search(user)
        context = _CONTEXT.search(user)
        memories = _MEMORIES.search(user)
        coworkers = _COWORKERS.search(everything)

        last_action = last_observation = None
        for speaker, text in texts:
            if speaker != "assistant":
                continue
            observation = _OBSERVATION.search(text)
            if observation:
                action = _ACTION.search(text)
                last_action = action.group(1).strip() if action else None
                last_observation = observation.group(1).strip()
        return cls(
            role=role.group(1).strip() if role else None,
            tools=tools,
            task=(task.group(1) if task else user).strip(),
            expected=expected.group(1).strip() if expected else "",
            context=context.group(1).strip() if context else "",
            memories=memories.group(1).strip() if memories else "",
            knowledge=" ".join(k.strip() for k in _KNOWLEDGE.findall(user)),
            coworkers=tuple(
                c.strip() for c in (coworkers.group(1).split(",") if coworkers else []) if c.strip()
            ),
            last_action=last_action,
            last_observation=last_observation,
            schema=schema_in(user),
            everything=everything,
        )

    def tool_like(self, word: str) -> str | None:
        return next((t for t in self.tools if word in t.lower()), None)

    def arguments(self, tool: str) -> list[str]:
        """``tool``'s argument names as CrewAI describes them (the required ones first)."""
        start = self.everything.find(f"Tool Name: {tool}\n")
        if start < 0:
            return []
        block = self.everything[start:].split("Tool Description:", 1)[0]
        described = block.split("Tool Arguments:", 1)[-1].strip()
        try:
            schema = json.loads(described)
        except ValueError:
            return []
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            return []
        required = [str(n) for n in schema.get("required") or [] if n in schema["properties"]]
        return required + [str(n) for n in schema["properties"] if n not in required]

    def takes(self, tool: str, argument: str) -> bool:
        """Whether ``tool``'s described arguments (CrewAI's "Tool Arguments:") name it."""
        start = self.everything.find(f"Tool Name: {tool}\n")
        if start < 0:
            return False
        block = self.everything[start:].split("Tool Description:", 1)[0]
        return f'"{argument}"' in block
