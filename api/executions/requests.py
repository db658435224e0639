"""Execution request bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from commands.messages import Id, InputKey, InputValue, Reason


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ExecutionBody(Body):
    crew_id: Id
    inputs: dict[InputKey, InputValue] = Field(
        default_factory=dict, description="a value for every {placeholder} the crew uses"
    )
    timeout_s: float | None = Field(default=None, gt=0, le=86_400,
                                    description="default KASAL_EXECUTION_TIMEOUT_S")


class CancelBody(Body):
    reason: Reason = "cancelled by user"
