"""Execution reads: the executions and timeline read models, never the log."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Response

from api.executions.responses import ArtifactList, ExecutionOut, ExecutionPage, Timeline
from api.problems import ResourceNotFound
from api.reads import POSITION_HEADER, Limit, Offset, ViewerRead
from domain.artifacts import MEDIA_TYPES
from domain.vocabulary import ExecutionStatus

router = APIRouter()


@router.get("", response_model=ExecutionPage)
async def list_executions(
    read: ViewerRead, status: ExecutionStatus | None = None, crew_id: str | None = None,
    limit: Limit = 50, offset: Offset = 0,
) -> dict[str, Any]:
    """List executions, newest first, filtered by status and crew."""
    page = await read.models.list_executions(read.tenant_id, status=status, crew_id=crew_id,
                                             limit=limit, offset=offset)
    return read.page(page, limit, offset)


@router.get("/{execution_id}", response_model=ExecutionOut)
async def get_execution(execution_id: str, read: ViewerRead) -> dict[str, Any]:
    """One execution: status, tasks, result or error, token usage."""
    found = await read.models.get_execution(read.tenant_id, execution_id)
    return read.one(found, "execution", execution_id)


@router.get("/{execution_id}/timeline", response_model=Timeline)
async def get_timeline(execution_id: str, read: ViewerRead) -> dict[str, Any]:
    """Every step of an execution, in order."""
    if (await read.models.get_execution(read.tenant_id, execution_id)).item is None:
        raise ResourceNotFound("execution", execution_id)
    page = await read.models.execution_timeline(read.tenant_id, execution_id)
    return {"execution_id": execution_id, "position": read.at(page.position),
            "items": page.items}


@router.get("/{execution_id}/artifacts", response_model=ArtifactList)
async def list_artifacts(execution_id: str, read: ViewerRead) -> dict[str, Any]:
    """The files the execution's tasks wrote (their ``output_file``), in the order written."""
    if (await read.models.get_execution(read.tenant_id, execution_id)).item is None:
        raise ResourceNotFound("execution", execution_id)
    page = await read.models.execution_artifacts(read.tenant_id, execution_id)
    items = [{**row, "url": f"/api/v1/executions/{execution_id}/artifacts/"
                            f"{quote(row['path'], safe='/')}"} for row in page.items]
    return {"execution_id": execution_id, "position": read.at(page.position), "items": items}


ARTIFACT_TYPES = sorted({*MEDIA_TYPES.values(), "text/plain"})


@router.get("/{execution_id}/artifacts/{path:path}", response_class=Response,
            responses={200: {"description": "the artifact's bytes (UTF-8 text), with its "
                             "SHA-256 as the ETag",
                             # a JSON or YAML artifact is any value; the others, text
                             "content": {t: {"schema": {"type": "string"}
                                             if t.startswith("text/") else {}}
                                         for t in ARTIFACT_TYPES}}})
async def download_artifact(execution_id: str, path: str, read: ViewerRead) -> Response:
    """One artifact's content, as the task wrote it."""
    found = await read.models.artifact_content(read.tenant_id, execution_id, path)
    if found.item is None:
        raise ResourceNotFound("artifact", f"{execution_id}/{path}")
    row = found.item
    name = path.rsplit("/", 1)[-1]
    return Response(content=row["content"], media_type=f"{row['media_type']}; charset=utf-8",
                    headers={"ETag": f'"{row["sha256"]}"', POSITION_HEADER: str(found.position),
                             "Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff"})
