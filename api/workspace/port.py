"""The port between the workspace routes and the files themselves (a directory in adapters/,
``KASAL_WORKSPACE_DIR/<tenant>``). Every call names the tenant: the routes pass the
authenticated principal's, and an implementation roots each tenant apart, so no path can
name another tenant's file. Paths are relative, ``/``-separated; one that cannot name a file
of the workspace (absolute, ``..``, NUL, a backslash, a control character, a hidden part, a
symlink out, a directory) is ``WorkspacePathRefused`` with a message that says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class WorkspacePathRefused(ValueError):
    """A path that names no file the workspace may hold (422, with this message)."""


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int
    sha256: str | None = None  # known where the bytes were written: the upload's answer


@dataclass(frozen=True)
class Download:
    """A file, opened (an upload replacing it meanwhile does not change what is read), in
    chunks: a file an agent wrote may be larger than an upload may be."""

    file: StoredFile
    chunks: AsyncIterator[bytes]


class WorkspaceFiles(Protocol):
    @property
    def max_file_bytes(self) -> int:
        """The largest file the workspace takes (uploads above it are 413)."""
        ...

    def check_path(self, path: str) -> None:
        """``WorkspacePathRefused`` for a path no file can have (before a body is read)."""
        ...

    async def put(self, tenant_id: str, path: str,
                  content: bytes | bytearray) -> tuple[StoredFile, bool]:
        """Write the file whole (readers never see half of it); True if it is new."""
        ...

    async def list_files(self, tenant_id: str) -> list[StoredFile]:
        """Every file, in path order, without its hash (hashing means reading them all)."""
        ...

    async def read(self, tenant_id: str, path: str) -> Download | None:
        """The file, opened; None when there is none of that name."""
        ...

    async def delete(self, tenant_id: str, path: str) -> bool:
        """Remove the file; False when there was none of that name."""
        ...
