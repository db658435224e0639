"""What API key reads return (never the keys themselves)."""

from __future__ import annotations

from pydantic import Field

from api.reads import Model, PageOut
from domain.vocabulary import Role


class ApiKeyOut(Model):
    id: str
    name: str
    role: Role
    prefix: str
    revoked: bool
    created_by: str
    created_at: str
    revoked_at: str | None


class ApiKeyPage(PageOut):
    items: list[ApiKeyOut]


class IssuedKey(Model):
    id: str = Field(description="the key's id")
    version: int
    position: int = Field(description="pass it as min_position to read your write")
    key: str = Field(description="the API key; shown once, store it now")
    prefix: str
    role: Role
    tenant_id: str
