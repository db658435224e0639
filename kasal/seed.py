"""A sample pair of agents and a crew, defined through commands (AUTO_SEED_DATABASE).

Fixed command ids make seeding idempotent: running it on every start adds nothing twice.
"""

from __future__ import annotations

from typing import Any

from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.ports import AppendResult

SEED = "seed:v1"
AGENTS: dict[str, dict[str, Any]] = {
    "researcher": {
        "role": "Researcher",
        "goal": "Find accurate, current facts about {topic}",
        "backstory": "A careful analyst who cites what they find.",
        "tools": ["calculator"],
    },
    "writer": {
        "role": "Writer",
        "goal": "Explain {topic} clearly to a busy reader",
        "backstory": "A technical writer who turns notes into short, plain prose.",
    },
}


async def seed(bus: CommandBus, tenant_id: str, default_llm: str) -> AppendResult:
    def ctx(name: str) -> CommandContext:
        return CommandContext(tenant_id=tenant_id, actor="system:seed", command_id=f"{SEED}:{name}")

    ids = {}
    for key, agent in AGENTS.items():
        registered = await bus.dispatch(m.RegisterAgent(**agent, llm=default_llm),
                                        ctx(f"agent:{key}"))
        ids[key] = registered.aggregate_id
    return await bus.dispatch(
        m.DefineCrew(
            name="research-and-write",
            process="sequential",
            agents=[ids["researcher"], ids["writer"]],
            tasks=[
                m.TaskFields(
                    name="research",
                    description="Research {topic} and list the five most important facts.",
                    expected_output="Five bullet points with facts about {topic}.",
                    agent=ids["researcher"],
                ),
                m.TaskFields(
                    name="write",
                    description="Write a short briefing on {topic} from the research.",
                    expected_output="Three paragraphs of plain prose.",
                    agent=ids["writer"],
                    context=["research"],
                ),
            ],
        ),
        ctx("crew:research-and-write"),
    )
