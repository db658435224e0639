"""What execution reads return."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.reads import Model, PageOut
from domain.vocabulary import ExecutionStatus, TaskStatus


class ExecutionTaskOut(Model):
    name: str
    agent: str | None
    status: TaskStatus
    output: str | None
    output_json: dict[str, Any] | None = Field(
        default=None, description="a task with an output_schema: its answer, valid against it")
    output_problem: str | None = Field(
        default=None, description="why the answer is not valid against its output_schema")
    artifact: str | None = Field(
        default=None, description="a task with an output_file: the path of its artifact")


class ExecutionOut(Model):
    id: str
    crew_id: str
    crew_name: str
    status: ExecutionStatus
    inputs: dict[str, Any]
    tasks: list[ExecutionTaskOut]
    result: str | None
    error: str | None
    cancel_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    llm_calls: int
    requested_by: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    version: int


class ExecutionPage(PageOut):
    items: list[ExecutionOut]


class TimelineEntry(Model):
    version: int
    position: int
    type: str
    occurred_at: str
    task_name: str | None
    summary: str
    data: dict[str, Any]


class Timeline(Model):
    execution_id: str
    position: int
    items: list[TimelineEntry]


class ArtifactOut(Model):
    path: str
    task_name: str
    sha256: str
    size: int = Field(description="bytes")
    media_type: str
    created_at: str
    position: int
    url: str = Field(description="where to download it")


class ArtifactList(Model):
    execution_id: str
    position: int
    items: list[ArtifactOut]
