"""What knowledge reads return."""

from __future__ import annotations

from api.reads import Model, PageOut


class KnowledgeOut(Model):
    id: str
    name: str
    media_type: str
    origin: str | None
    sha256: str
    chunks: int
    characters: int
    archived: bool
    version: int
    created_at: str
    updated_at: str


class KnowledgePage(PageOut):
    items: list[KnowledgeOut]
