"""The workspace files the API serves (adapters/crewai/workspace_files.py): only regular
files, never the workspace's hidden temporary ones, never a symlink in a listing, and every
path a header or a filesystem cannot take refused by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.crewai.workspace import Workspace
from adapters.crewai.workspace_files import DirectoryWorkspaceFiles, checked_path
from api.workspace.port import WorkspacePathRefused


async def test_the_listing_holds_regular_files_by_path_and_nothing_hidden(tmp_path: Path) -> None:
    files = DirectoryWorkspaceFiles(tmp_path)
    for path in ("b.txt", "a/z.txt", "a-c.txt"):
        await files.put("acme", path, path.encode())
    root = Workspace(tmp_path, "acme").root
    (root / ".x.part").write_bytes(b"half")  # what Workspace.put writes before replacing
    (root / ".cache").mkdir()
    (root / ".cache" / "seen.txt").write_bytes(b"hidden folder")
    (root / "link.txt").symlink_to(root / "b.txt")
    (root / "empty").mkdir()
    listed = await files.list_files("acme")
    assert [(f.path, f.size) for f in listed] == [("a-c.txt", 7), ("a/z.txt", 7), ("b.txt", 5)]
    assert await files.list_files("nobody") == []


async def test_a_pipe_is_not_a_file_to_read_or_replace(tmp_path: Path) -> None:
    files = DirectoryWorkspaceFiles(tmp_path)
    root = Workspace(tmp_path, "acme").root
    root.mkdir(parents=True)
    os.mkfifo(root / "pipe")  # opening it to read would block the thread for good
    for attempt in (files.read("acme", "pipe"), files.put("acme", "pipe", b"x"),
                    files.delete("acme", "pipe")):
        with pytest.raises(WorkspacePathRefused, match="is not a regular file"):
            await attempt


async def test_a_download_streams_the_file_in_chunks(tmp_path: Path) -> None:
    files = DirectoryWorkspaceFiles(tmp_path)
    content = os.urandom(600 * 1024)
    await files.put("acme", "data.bin", content)
    download = await files.read("acme", "data.bin")
    assert download is not None and download.file.size == len(content)
    chunks = [chunk async for chunk in download.chunks]
    assert len(chunks) == 3 and b"".join(chunks) == content
    assert await files.read("acme", "missing.bin") is None
    assert await files.read("acme", "data.bin/under") is None  # a file is no folder


@pytest.mark.parametrize(("path", "message"), [
    ("a\nb.txt", "control character"), ("a\x7fb", "control character"),
    ("\ud800.txt", "lone surrogate"), ("a/.git/config", "hidden part"),
    (".", "the workspace itself"), ("a\x00b", "NUL"), ("../a", "leaves the workspace"),
])
def test_a_path_the_api_cannot_take_is_refused_by_name(path: str, message: str) -> None:
    with pytest.raises(WorkspacePathRefused, match=message):
        checked_path(path)
