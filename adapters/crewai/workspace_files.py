"""The API's workspace port (``api/workspace/port.py``) over the tenants' ``Workspace``
directories, file I/O on worker threads (off the event loop).

Beyond what ``Workspace`` checks (relative, no ``..``, NUL or backslash, no symlink out), a
path the API takes has no control character (it would go into a header) and no hidden part
(``.x``): the workspace writes its temporary files as hidden names, and ``list`` leaves them
out, so what the API lists is exactly what it serves. Downloads are streamed in chunks (a
file an agent wrote may be larger than an upload may be); an upload replacing the file
meanwhile does not change what is read (uploads replace a file, never rewrite it in place)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from adapters.crewai.workspace import MAX_FILE_BYTES, Workspace, WorkspaceError, checked_relative
from api.workspace.port import Download, StoredFile, WorkspacePathRefused

CHUNK_BYTES = 256 * 1024


def checked_path(path: str) -> str:
    """``path`` as the workspace names it, or ``WorkspacePathRefused`` saying why."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise WorkspacePathRefused(f"{path!r}: a workspace path is valid Unicode text "
                                   "(no lone surrogate)") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path.replace("\x00", "")):
        raise WorkspacePathRefused(f"{path!r}: a workspace path has no control character")
    try:
        relative = checked_relative(path)
    except WorkspaceError as error:
        raise WorkspacePathRefused(str(error)) from None
    if any(part.startswith(".") for part in relative.parts):
        raise WorkspacePathRefused(f"{path!r} has a hidden part ('.' first): those names are "
                                   "the workspace's own")
    if not relative.parts:
        raise WorkspacePathRefused(f"{path!r} is the workspace itself: name a file")
    return str(relative)


def hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


class DirectoryWorkspaceFiles:
    """Each tenant's files under ``root`` (``KASAL_WORKSPACE_DIR``): shared storage when the
    API and the workers run on different machines, or an agent will not see an upload."""

    max_file_bytes = MAX_FILE_BYTES

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_path(self, path: str) -> None:
        checked_path(path)

    async def put(self, tenant_id: str, path: str,
                  content: bytes | bytearray) -> tuple[StoredFile, bool]:
        return await asyncio.to_thread(self._put, tenant_id, path, content)

    async def list_files(self, tenant_id: str) -> list[StoredFile]:
        return await asyncio.to_thread(self._list, tenant_id)

    async def read(self, tenant_id: str, path: str) -> Download | None:
        opened = await asyncio.to_thread(self._open, tenant_id, path)
        if opened is None:
            return None
        file, stored = opened
        return Download(stored, _chunks(file))

    async def delete(self, tenant_id: str, path: str) -> bool:
        return await asyncio.to_thread(self._delete, tenant_id, path)

    def _file(self, tenant_id: str, path: str) -> tuple[Workspace, Path, bool]:
        """The tenant's workspace, the real path of ``path`` in it, and whether a file is
        there; a folder (or a pipe, a device) there is ``WorkspacePathRefused``."""
        space = Workspace(self.root, tenant_id)
        try:
            real = space.resolve(checked_path(path))
            try:
                mode = real.stat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                return space, real, False
            except OSError as error:  # a name too long, a symlink loop, ...
                raise WorkspaceError(f"{path!r}: {error.strerror or error}") from None
            if stat.S_ISDIR(mode):
                raise WorkspaceError(f"{path!r} is a directory: name a file")
            if not stat.S_ISREG(mode):
                raise WorkspaceError(f"{path!r} is not a regular file")
        except WorkspaceError as error:
            raise WorkspacePathRefused(str(error)) from None
        return space, real, True

    def _put(self, tenant_id: str, path: str,
             content: bytes | bytearray) -> tuple[StoredFile, bool]:
        space, real, existed = self._file(tenant_id, path)
        try:
            placed = space.put(space.relative(real), content)
        except WorkspaceError as error:
            raise WorkspacePathRefused(str(error)) from None
        digest = hashlib.sha256(content).hexdigest()
        return StoredFile(space.relative(placed), len(content), digest), not existed

    def _list(self, tenant_id: str) -> list[StoredFile]:
        space = Workspace(self.root, tenant_id)
        if not space.root.is_dir():
            return []
        found = []
        for file in space.root.rglob("*"):
            relative = space.relative(file)
            if hidden(relative):
                continue
            try:
                status = file.lstat()
            except OSError:  # deleted meanwhile
                continue
            if stat.S_ISREG(status.st_mode):  # no folder, no symlink
                found.append(StoredFile(relative, status.st_size))
        return sorted(found, key=lambda f: f.path)

    def _open(self, tenant_id: str, path: str) -> tuple[BinaryIO, StoredFile] | None:
        space, real, exists = self._file(tenant_id, path)
        if not exists:
            return None
        try:
            file = real.open("rb")
        except FileNotFoundError:  # deleted meanwhile
            return None
        except OSError as error:
            raise WorkspacePathRefused(f"{path!r}: {error.strerror or error}") from None
        return file, StoredFile(space.relative(real), os.fstat(file.fileno()).st_size)

    def _delete(self, tenant_id: str, path: str) -> bool:
        _, real, exists = self._file(tenant_id, path)
        if not exists:
            return False
        try:
            real.unlink()
        except FileNotFoundError:  # deleted meanwhile
            return False
        except OSError as error:
            raise WorkspacePathRefused(f"{path!r}: {error.strerror or error}") from None
        return True


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
