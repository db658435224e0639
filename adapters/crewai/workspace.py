"""A tenant's workspace: the one directory its agents' file tools may touch.

``KASAL_WORKSPACE_DIR/<tenant>/`` (by default ``DATA_DIR/workspaces/<tenant>``). Every path
a tool or a definition names is relative to it: an absolute path, a ``..`` part, a NUL or a
symlink that resolves outside it is refused with a message that says so, checked by Kasal
itself whatever CrewAI's own sandbox settings are (its ``ALLOW_UNSAFE_PATHS`` escape hatch
included). One tenant never sees another's files: the tenant's directory is the root, named
by a hash of the tenant id (never the id itself, so no id can name another's folder,
whatever its characters or the filesystem's case rules).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 20 * 1024 * 1024


class WorkspaceError(ValueError):
    """A path that is not inside the workspace, or a file that cannot go there."""


def checked_relative(path: str) -> PurePosixPath:
    """``path`` as a relative path inside a workspace, or a ``WorkspaceError`` saying why."""
    if not isinstance(path, str) or not path.strip():
        raise WorkspaceError("a workspace path must be a non-empty relative path")
    if "\x00" in path or "\\" in path:
        raise WorkspaceError(f"{path!r}: a workspace path has no NUL or backslash")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise WorkspaceError(f"{path!r} is absolute: give a path relative to the workspace")
    if ".." in pure.parts:
        raise WorkspaceError(f"{path!r} leaves the workspace ('..'): give a path inside it")
    return pure


class Workspace:
    def __init__(self, root: Path, tenant_id: str) -> None:
        folder = "t-" + hashlib.sha256(tenant_id.encode()).hexdigest()[:40]
        self.tenant_id = tenant_id
        self.root = (root / folder).resolve()

    def resolve(self, path: str, *, must_exist: bool = False) -> Path:
        """The real path of ``path`` inside the workspace (symlinks followed and checked)."""
        relative = checked_relative(path)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            real = (self.root / relative).resolve()
            if real != self.root and not real.is_relative_to(self.root):
                raise WorkspaceError(f"{path!r} resolves outside the workspace (a symlink?)")
            if must_exist and not real.exists():
                raise WorkspaceError(f"{path!r} is not in the workspace")
        except OSError as error:  # a name too long, a file where a folder should be, ...
            raise WorkspaceError(f"{path!r}: {error.strerror or error}") from None
        return real

    def relative(self, real: Path) -> str:
        return str(real.relative_to(self.root)) if real != self.root else "."

    def put(self, path: str, content: bytes | bytearray) -> Path:
        if len(content) > MAX_FILE_BYTES:
            raise WorkspaceError(f"{path!r} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        target = self.resolve(path)
        try:
            if target == self.root or target.is_dir():
                raise WorkspaceError(f"{path!r} is a directory: name a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(content)
                os.replace(temporary, target)  # readers never see half a file
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as error:
            raise WorkspaceError(f"{path!r}: {error.strerror or error}") from None
        return target

    def files(self) -> list[tuple[str, int]]:
        """Every file, as (relative path, size), in path order."""
        if not self.root.is_dir():
            return []
        found = []
        for file in sorted(self.root.rglob("*")):
            if file.is_file() and not file.is_symlink() and not file.name.startswith("."):
                found.append((self.relative(file), file.stat().st_size))
        return found
