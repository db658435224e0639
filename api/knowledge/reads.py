"""Knowledge reads: the knowledge read model, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.knowledge.responses import KnowledgeOut, KnowledgePage
from api.reads import Limit, Offset, ViewerRead

router = APIRouter()


@router.get("", response_model=KnowledgePage)
async def list_knowledge_sources(read: ViewerRead, include_archived: bool = False,
                                 limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """List the tenant's knowledge sources."""
    page = await read.models.list_knowledge_sources(
        read.tenant_id, include_archived=include_archived, limit=limit, offset=offset)
    return read.page(page, limit, offset)


@router.get("/{knowledge_id}", response_model=KnowledgeOut)
async def get_knowledge_source(knowledge_id: str, read: ViewerRead) -> dict[str, Any]:
    """One knowledge source."""
    return read.one(await read.models.get_knowledge_source(read.tenant_id, knowledge_id),
                    "knowledge source", knowledge_id)
