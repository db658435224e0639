"""The API key request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from commands.messages import Name
from domain.vocabulary import Role


class ApiKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="a label for the key")
    role: Role
