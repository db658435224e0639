"""The crew request body: what a client sends (the command adds the crew's id)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commands.messages import Id, Name, Text


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TaskBody(Body):
    name: Name = Field(description="unique in the crew; other tasks name it in context")
    description: Text = Field(description="what to do; may use {placeholders}")
    expected_output: Text
    agent: Id | None = Field(default=None, description="one of the crew's agents")
    context: list[Name] = Field(default_factory=list, max_length=50,
                                description="names of earlier tasks whose output it reads")
    human_input: bool = False
    output_schema: dict[str, Any] | None = Field(
        default=None, description="a JSON Schema (type object) the task's answer must satisfy "
        "(CrewAI's output_json / output_pydantic); the execution returns the validated JSON")
    output_file: Name | None = Field(
        default=None, description="the output_file of CrewAI: the answer becomes an artifact "
        "of the execution under this relative path (may use {placeholders}), listed at "
        "/executions/{id}/artifacts")


class CrewBody(Body):
    name: Name
    process: Literal["sequential", "hierarchical"] = "sequential"
    agents: list[Id] = Field(min_length=1, max_length=50, description="agent ids")
    tasks: list[TaskBody] = Field(min_length=1, max_length=50)
    manager_llm: Name | None = Field(default=None, description="hierarchical: the manager")
    memory: bool = Field(default=False, description="recall this crew's earlier task outputs")
    knowledge_sources: list[Id] = Field(
        default_factory=list, max_length=20,
        description="knowledge source ids (/api/v1/knowledge) every task of the crew is given")
