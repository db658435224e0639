"""Execution request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from commands.messages import Id, InputValue


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ExecutionBody(Body):
    crew_id: Id
    inputs: dict[str, InputValue] = Field(
        default_factory=dict, description="a value for every {placeholder} the crew uses"
    )
    timeout_s: float | None = Field(default=None, gt=0, le=86_400,
                                    description="default KASAL_EXECUTION_TIMEOUT_S")


class CancelBody(Body):
    reason: Annotated[str, StringConstraints(max_length=1000)] = "cancelled by user"
