"""The workspace over HTTP (issue 10 item 3): /api/v1/workspace/files uploads, lists,
downloads and deletes the caller's tenant's files, on every deployment; a path out of the
workspace or naming a folder is 422, a file over the limit 413 (the body cap does not apply to
it), a viewer only reads, another tenant sees none of it, and an upload cut off writes
nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Scope

from adapters.crewai.workspace import MAX_FILE_BYTES, Workspace
from api import limits
from api.app import create_app
from api.services import QueryServices
from kasal.web import build_app
from tests.e2e.conftest import App

FILES = "/api/v1/workspace/files"


async def test_a_file_is_uploaded_listed_downloaded_replaced_and_deleted(
    app: App, acme: httpx.AsyncClient,
) -> None:
    first = await acme.put(f"{FILES}/notes/owls.txt", content=b"Owls hunt at night.",
                           headers={"Content-Type": "text/plain"})
    assert first.status_code == 201, first.text
    assert first.json() == {"path": "notes/owls.txt", "size": 19,
                            "sha256": hashlib.sha256(b"Owls hunt at night.").hexdigest()}
    replaced = await acme.put(f"{FILES}/notes/owls.txt", content=b"Owls fly silently.")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["sha256"] == hashlib.sha256(b"Owls fly silently.").hexdigest()
    named = await acme.put(f"{FILES}/r%C3%A9sum%C3%A9%20%22x%22%3B.bin", content=b"\x00\xff")
    assert named.status_code == 201, named.text
    assert named.json()["path"] == 'résumé "x";.bin'
    space = Workspace(app.kasal.settings.workspace_dir, "acme")
    assert (space.root / "notes" / "owls.txt").read_bytes() == b"Owls fly silently."

    listed = await acme.get(FILES)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [{"path": "notes/owls.txt", "size": 18},
                                       {"path": 'résumé "x";.bin', "size": 2}]}

    notes = await acme.get(f"{FILES}/notes/owls.txt")
    assert notes.status_code == 200, notes.text
    assert notes.content == b"Owls fly silently."
    assert notes.headers["content-type"] == "application/octet-stream"
    assert notes.headers["x-content-type-options"] == "nosniff"
    assert notes.headers["content-disposition"] == (
        "attachment; filename=\"owls.txt\"; filename*=UTF-8''owls.txt")
    binary = await acme.get(f"{FILES}/r%C3%A9sum%C3%A9%20%22x%22%3B.bin")
    assert binary.content == b"\x00\xff"
    assert binary.headers["content-disposition"] == (
        "attachment; filename=\"r_sum___x__.bin\"; "
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22%3B.bin")

    deleted = await acme.delete(f"{FILES}/notes/owls.txt")
    assert deleted.status_code == 204, deleted.text
    assert not (space.root / "notes" / "owls.txt").exists()
    for gone in (await acme.get(f"{FILES}/notes/owls.txt"),
                 await acme.delete(f"{FILES}/notes/owls.txt")):
        assert gone.status_code == 404, gone.text
        assert gone.json()["error"] == "not_found"
    assert [f["path"] for f in (await acme.get(FILES)).json()["items"]] == ['résumé "x";.bin']


async def test_a_path_that_names_no_file_of_the_workspace_is_422_and_writes_nothing(
    app: App, acme: httpx.AsyncClient, tmp_path: Path,
) -> None:
    space = Workspace(app.kasal.settings.workspace_dir, "acme")
    outside = tmp_path / "outside"
    outside.mkdir()
    space.root.mkdir(parents=True, exist_ok=True)
    (space.root / "escape").symlink_to(outside)
    assert (await acme.put(f"{FILES}/folder/inside.txt", content=b"x")).status_code == 201
    for path, message in (("%2E%2E/x", "leaves the workspace"),
                          ("folder/%2E%2E/%2E%2E/x", "leaves the workspace"),
                          ("%2Fetc/passwd", "is absolute"),
                          ("a%5Cb.txt", "no NUL or backslash"),
                          ("a%00b.txt", "NUL"),
                          ("escape/x.txt", "resolves outside the workspace"),
                          ("folder", "is a directory"),
                          ("folder/", "is a directory"),
                          (".env", "hidden part"),
                          ("a%09b.txt", "control character"),
                          ("x" * 300, "File name too long")):
        for method in ("PUT", "GET", "DELETE"):
            response = await acme.request(method, f"{FILES}/{path}", content=b"secret")
            assert response.status_code == 422, (method, path, response.text)
            assert message in response.json()["message"], (method, path, response.text)
    assert list(outside.iterdir()) == []
    assert [f["path"] for f in (await acme.get(FILES)).json()["items"]] == ["folder/inside.txt"]


async def test_a_file_over_the_limit_is_413_and_the_body_cap_does_not_apply_to_uploads(
    app: App, acme: httpx.AsyncClient,
) -> None:
    body_cap = app.kasal.settings.max_body_bytes
    assert body_cap < MAX_FILE_BYTES  # the default: an upload is held to the file limit
    at_limit = os.urandom(MAX_FILE_BYTES)
    placed = await acme.put(f"{FILES}/big.bin", content=at_limit)
    assert placed.status_code == 201, placed.text
    assert placed.json()["sha256"] == hashlib.sha256(at_limit).hexdigest()

    declared = await acme.put(f"{FILES}/over.bin", content=at_limit + b"!")
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"] == "file_too_large"
    assert f"limit of {MAX_FILE_BYTES} bytes (20 MiB)" in declared.json()["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(at_limit), 1 << 20):
            yield at_limit[start:start + (1 << 20)]
        yield b"!"

    streamed = await acme.put(f"{FILES}/over.bin", content=chunked())
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"] == "file_too_large"
    # any other body is still held to KASAL_MAX_BODY_BYTES
    agent = await acme.post("/api/v1/agents", content=b" " * (body_cap + 1),
                            headers={"Content-Type": "application/json"})
    assert agent.status_code == 413, agent.text
    assert agent.json()["error"] == "payload_too_large"
    listed = (await acme.get(FILES)).json()["items"]
    assert listed == [{"path": "big.bin", "size": MAX_FILE_BYTES}]


async def test_a_viewer_reads_the_workspace_but_cannot_change_it(
    app: App, acme: httpx.AsyncClient,
) -> None:
    assert (await acme.put(f"{FILES}/a.txt", content=b"kept")).status_code == 201
    async with await app.client("acme", "viewer") as viewer:
        for method in ("PUT", "DELETE"):
            refused = await viewer.request(method, f"{FILES}/a.txt", content=b"changed")
            assert refused.status_code == 403, refused.text
            assert "needs the editor role" in refused.json()["message"]
        assert (await viewer.get(f"{FILES}/a.txt")).content == b"kept"
        assert (await viewer.get(FILES)).json()["items"] == [{"path": "a.txt", "size": 4}]
    async with await app.client("acme", "editor") as editor:
        assert (await editor.put(f"{FILES}/a.txt", content=b"edited")).status_code == 200


async def test_another_tenant_sees_none_of_the_files(
    app: App, acme: httpx.AsyncClient, globex: httpx.AsyncClient,
) -> None:
    assert (await acme.put(f"{FILES}/plans.txt", content=b"acme's")).status_code == 201
    assert (await globex.get(FILES)).json() == {"items": []}
    for response in (await globex.get(f"{FILES}/plans.txt"),
                     await globex.delete(f"{FILES}/plans.txt")):
        assert response.status_code == 404, response.text
    own = await globex.put(f"{FILES}/plans.txt", content=b"globex's")
    assert own.status_code == 201, own.text  # a file of its own, not acme's replaced
    assert (await acme.get(f"{FILES}/plans.txt")).content == b"acme's"
    assert (await globex.get(f"{FILES}/plans.txt")).content == b"globex's"


async def test_an_app_built_without_a_workspace_answers_503(app: App) -> None:
    kasal = app.kasal

    async def ready() -> dict[str, str]:
        return {}

    bare = create_app(kasal.bus, QueryServices(read_models=kasal.read_models, clock=kasal.clock),
                      ready=ready)
    key = await app.key("acme", "admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(bare), base_url="http://kasal",
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        for method, url in (("PUT", f"{FILES}/a.txt"), ("GET", FILES),
                            ("GET", f"{FILES}/a.txt"), ("DELETE", f"{FILES}/a.txt")):
            response = await client.request(method, url, content=b"x")
            assert response.status_code == 503, response.text
            assert response.json() == {"error": "workspace_unavailable",
                                       "message": "this API process serves no workspace"}


async def test_an_upload_whose_client_hangs_up_or_stalls_writes_nothing(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    asgi = build_app(app.kasal, manage_lifecycle=False)
    key = await app.key("acme", "editor")
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    def upload(path: str) -> Scope:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "PUT", "scheme": "http", "path": f"{FILES}/{path}",
                "raw_path": f"{FILES}/{path}".encode(), "root_path": "", "query_string": b"",
                "headers": [(b"host", b"kasal"), (b"authorization", f"Bearer {key}".encode())],
                "client": ("127.0.0.1", 1), "server": ("kasal", 80)}

    parts: list[Message] = [{"type": "http.request", "body": b"half", "more_body": True},
                            {"type": "http.disconnect"}]

    async def hangs_up() -> Message:
        return parts.pop(0)

    await asgi(upload("gone.txt"), hangs_up, send)
    assert sent == []  # nobody to answer

    monkeypatch.setattr(limits, "BODY_TIMEOUT_S", 0.2)
    first = True

    async def stalls() -> Message:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"half", "more_body": True}
        await asyncio.sleep(60)
        raise AssertionError("not cut off")

    await asgi(upload("stalled.txt"), stalls, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408, sent
    assert json.loads(sent[1]["body"])["error"] == "request_timeout"
    async with await app.client("acme", "viewer") as viewer:
        assert (await viewer.get(FILES)).json() == {"items": []}
