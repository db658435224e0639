"""``/api/v1/workspace/files``: the caller's tenant's workspace, the one directory its agents'
file tools read and write (``file_read``, ``file_write``, ``directory_read``). The tenant is
always the authenticated principal's. Uploads are not events: the workspace is the agents'
scratch space, not part of any definition, and its files change under the agents' own writes,
which no event records either (docs/2026-12-02-workspace-route.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from api.auth import Editor, Viewer
from api.errors import ErrorBody
from api.problems import BodyTimeout, FileTooLarge, ResourceNotFound, WorkspaceUnavailable
from api.reads import Model
from api.workspace.port import WorkspaceFiles

router = APIRouter(prefix="/api/v1/workspace", tags=["workspace"])
OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
PATH_REFUSED = {"model": ErrorBody, "description": "the path names no file the workspace may "
                "hold (absolute, '..', NUL, a backslash, a control character, a hidden part, "
                "a symlink out, a directory), or the request is not valid"}


def workspace_files(request: Request) -> WorkspaceFiles:
    files: WorkspaceFiles | None = getattr(request.app.state, "workspace_files", None)
    if files is None:
        raise WorkspaceUnavailable("this API process serves no workspace")
    return files


FilesDep = Annotated[WorkspaceFiles, Depends(workspace_files)]


class WorkspaceFile(Model):
    path: str = Field(description="relative to the workspace, '/' between parts")
    size: int = Field(description="in bytes")


class StoredFileOut(WorkspaceFile):
    sha256: str = Field(description="of the bytes stored, hex")


class WorkspaceFileList(Model):
    items: list[WorkspaceFile] = Field(description="every file, by path; no hashes (that "
                                       "would read every file): the upload answers with one")


UPLOAD_TIMEOUT_S = 300.0  # for a whole upload (each part also within the guard's 30 s)


async def read_upload(request: Request, limit: int) -> bytearray:
    """The body, counted as it arrives into one buffer: past ``limit`` it is 413 before
    more is read, and one that takes longer than ``UPLOAD_TIMEOUT_S`` in all is 408."""
    body = bytearray()
    try:
        async with asyncio.timeout(UPLOAD_TIMEOUT_S):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:
                    raise FileTooLarge(limit)
                body += chunk
    except TimeoutError:
        raise BodyTimeout(UPLOAD_TIMEOUT_S) from None
    return body


def attachment(path: str) -> str:
    """A Content-Disposition that names the file safely: an ASCII fallback and the name
    itself percent-encoded (RFC 6266), so no quote or character of a name reaches the header
    as it is."""
    name = path.rsplit("/", 1)[-1]
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.put(
    "/files/{path:path}", status_code=201, response_model=StoredFileOut,
    responses={200: {"model": StoredFileOut, "description": "an existing file was replaced"},
               201: {"description": "a new file"},
               413: {"model": ErrorBody, "description": "the file is over the workspace's "
                     "limit (20 MiB; KASAL_MAX_BODY_BYTES does not apply to this body)"},
               422: PATH_REFUSED},
    openapi_extra={"requestBody": {"required": True, "content": OCTETS,
                                   "description": "the file's bytes, as they are"}},
)
async def put_file(path: str, principal: Editor, files: FilesDep, request: Request,
                   response: Response) -> dict[str, Any]:
    """Upload a file to the tenant's workspace (its bytes are the body; any Content-Type)."""
    files.check_path(path)  # a path no file can have: refused before the body is read
    content = await read_upload(request, files.max_file_bytes)
    stored, created = await files.put(principal.tenant_id, path, content)
    response.status_code = 201 if created else 200
    return {"path": stored.path, "size": stored.size, "sha256": stored.sha256}


@router.get("/files", response_model=WorkspaceFileList)
async def list_files(principal: Viewer, files: FilesDep) -> dict[str, Any]:
    """The files in the tenant's workspace, by path."""
    found = await files.list_files(principal.tenant_id)
    return {"items": [{"path": f.path, "size": f.size} for f in found]}


@router.get("/files/{path:path}", response_class=Response,
            responses={200: {"description": "the file's bytes", "content": OCTETS},
                       422: PATH_REFUSED})
async def download_file(path: str, principal: Viewer, files: FilesDep) -> Response:
    """Download one file of the tenant's workspace."""
    download = await files.read(principal.tenant_id, path)
    if download is None:
        raise ResourceNotFound("workspace file", path)
    return StreamingResponse(
        download.chunks, media_type="application/octet-stream",
        # no Content-Length: a file an agent is writing in place may grow or shrink meanwhile
        headers={"Content-Disposition": attachment(download.file.path),
                 "X-Content-Type-Options": "nosniff"})


@router.delete("/files/{path:path}", status_code=204, response_class=Response,
               responses={204: {"description": "removed"}, 422: PATH_REFUSED})
async def delete_file(path: str, principal: Editor, files: FilesDep) -> Response:
    """Remove one file from the tenant's workspace."""
    if not await files.delete(principal.tenant_id, path):
        raise ResourceNotFound("workspace file", path)
    return Response(status_code=204)
