"""``kasal backup`` of an embedded deployment while its server runs and writes, and ``kasal
restore`` into a new data directory: the restored log verifies, the read models and the
vector index come back (the index re-embedded from the log), the workspaces with them, and
nothing written after the backup; a changed or foreign backup, or a target that holds a
deployment, is refused naming why, with nothing restored."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from adapters.crewai.workspace import Workspace
from commands import messages as m
from commands.context import CommandContext
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from tests.pg import create_database, drop_database, plain_postgres_url
from tests.processes import KASAL, REPO


def kasal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KASAL, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False,
                          env={k: v for k, v in os.environ.items() if k != "KASAL_DATA_DIR"})


def settings(data_dir: Path) -> Settings:
    return Settings(KASAL_DATA_DIR=data_dir)  # type: ignore[call-arg]


async def define(app: Kasal, role: str, goal: str = "Find owls",
                 backstory: str = "Counts barn owls at night.") -> str:
    result = await app.bus.dispatch(m.RegisterAgent(role=role, goal=goal, backstory=backstory),
        CommandContext(tenant_id="acme", actor="test"))
    return result.aggregate_id


async def roles(app: Kasal) -> list[str]:
    await app.wait_until_projected(30.0)
    page = await app.read_models.list_agents("acme", limit=100_000)
    return sorted(str(a["role"]) for a in page.items)


def test_a_backup_taken_while_the_server_writes_restores_what_it_held(tmp_path: Path) -> None:
    source, copy, restored = tmp_path / "source", tmp_path / "backup", tmp_path / "restored"

    async def before_and_during() -> None:
        app = await bootstrap(settings(source))
        await app.start()
        try:
            await define(app, "Owl Counter")
            Workspace(app.settings.workspace_dir, "acme").put("notes/owls.txt", b"Barn owls.")
            link = Workspace(app.settings.workspace_dir, "acme").root / "elsewhere"
            link.symlink_to("/etc")
            await app.wait_until_projected(30.0)
            backing_up = asyncio.create_task(asyncio.to_thread(
                kasal, "backup", str(copy), "--data-dir", str(source)))
            during = 0
            while not backing_up.done():  # the server goes on writing while it is copied
                await define(app, f"Written During {during}", "Keep the ledger",
                             "Writes invoices down.")
                during += 1
            backed_up = await backing_up
            assert backed_up.returncode == 0, backed_up.stderr
            assert "backed up" in backed_up.stdout
            assert "left out 1 symbolic link" in backed_up.stdout
            assert during > 0
            await define(app, "Written After")  # not in the backup
            assert len(await roles(app)) == during + 2
        finally:
            await app.stop()

    asyncio.run(before_and_during())
    manifest = json.loads((copy / "manifest.json").read_text())
    assert {"events.db", "kasal.db", "workspaces/" + next(
        p.name for p in (copy / "workspaces").iterdir()) + "/notes/owls.txt"} <= set(
        manifest["files"])
    assert manifest["head_position"] > 0

    done = kasal("restore", str(copy), "--data-dir", str(restored))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout and "TAMPERED" not in done.stderr
    assert not (restored / "qdrant").exists()  # rebuilt from the log, not copied

    async def after() -> None:
        app = await bootstrap(settings(restored))
        await app.start()
        try:
            restored_roles = await roles(app)
            # what was written before the backup, and a prefix of what was written during it
            assert restored_roles[0] == "Owl Counter" and "Written After" not in restored_roles
            during_kept = sorted(int(r.rsplit(" ", 1)[1]) for r in restored_roles[1:])
            assert during_kept == list(range(len(during_kept)))
            space = Workspace(app.settings.workspace_dir, "acme")
            assert (space.root / "notes" / "owls.txt").read_bytes() == b"Barn owls."
            assert not (space.root / "elsewhere").exists()
            assert app.search is not None
            head = await app.store.head_position()
            assert await app.search.wait_until_indexed(head, 120.0)
            found = await app.search.search("acme", "barn owls at night", kind="agent")
            assert [hit.title for hit in found.hits][:1] == ["Owl Counter"], found.hits
            await define(app, "After Restore")  # the restored log takes appends
            assert await roles(app) == sorted([*restored_roles, "After Restore"])
        finally:
            await app.stop()

    asyncio.run(after())
    verified = kasal("audit", "verify", "--data-dir", str(restored))
    assert verified.returncode == 0, verified.stderr


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    async def make() -> None:
        app = await bootstrap(settings(tmp_path / "source"))
        await app.start()
        try:
            await define(app, "Owl Counter")
        finally:
            await app.stop()

    asyncio.run(make())
    done = kasal("backup", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "source"))
    assert done.returncode == 0, done.stderr
    return tmp_path / "backup"


def test_a_changed_backup_or_a_taken_target_is_refused_and_nothing_is_restored(
    tmp_path: Path, backup: Path,
) -> None:
    over = kasal("restore", str(backup), "--data-dir", str(tmp_path / "source"))
    assert over.returncode == 1
    assert "restore into a new data directory" in over.stderr

    (backup / "stray.txt").write_text("not from the backup")
    stray = kasal("restore", str(backup), "--data-dir", str(tmp_path / "a"))
    assert stray.returncode == 1 and "stray.txt is not in the manifest" in stray.stderr
    (backup / "stray.txt").unlink()

    events = backup / "events.db"
    events.write_bytes(events.read_bytes() + b"\0")
    changed = kasal("restore", str(backup), "--data-dir", str(tmp_path / "b"))
    assert changed.returncode == 1 and "events.db: missing or changed" in changed.stderr
    assert not (tmp_path / "a" / "events.db").exists()
    assert not (tmp_path / "b" / "events.db").exists()

    (backup / "manifest.json").write_text("{}")
    foreign = kasal("restore", str(backup), "--data-dir", str(tmp_path / "c"))
    assert foreign.returncode == 1 and "restores kasal-embedded-backup/1" in foreign.stderr


def test_a_backup_of_nothing_or_into_a_full_directory_is_refused(tmp_path: Path) -> None:
    nothing = kasal("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "none"))
    assert nothing.returncode == 1 and "not found" in nothing.stderr
    assert not (tmp_path / "none" / "events.db").exists()


def test_a_backup_into_a_full_directory_or_a_restore_beside_a_qdrant_server_is_refused(
    tmp_path: Path, backup: Path,
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    full = kasal("backup", str(tmp_path / "full"), "--data-dir", str(tmp_path / "source"))
    assert full.returncode == 1 and "is not empty" in full.stderr
    server = subprocess.run([*KASAL, "restore", str(backup), "--data-dir", str(tmp_path / "q")],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "QDRANT_URL": "http://127.0.0.1:1"})
    assert server.returncode == 1 and "Qdrant server here" in server.stderr
    assert not (tmp_path / "q" / "events.db").exists()


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore of the PostgreSQL that scripts/postgres.sh installs (or PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    path = str(found[-1]) if found else shutil.which(name)
    assert path, f"{name} not found: scripts/postgres.sh installs PostgreSQL with it"
    return path


def test_the_postgresql_deployment_is_backed_up_and_restored_with_pg_dump(
    tmp_path: Path,
) -> None:
    """The documented procedure (docs/2026-12-02-backup-restore.md): pg_dump -Fc of the
    database, pg_restore into an empty one; the restored log verifies and serves."""

    async def scenario() -> None:
        source, target = await create_database(), await create_database()
        try:
            def pg(data_dir: Path, url: str) -> Settings:
                return Settings(KASAL_DATA_DIR=data_dir, DATABASE_TYPE="postgres",  # type: ignore[call-arg]
                                DATABASE_URL=url, KASAL_VECTOR_SEARCH=False)

            app = await bootstrap(pg(tmp_path / "a", source))
            await app.start()
            try:
                await define(app, "Owl Counter")
                await app.wait_until_projected(30.0)
            finally:
                await app.stop()
            dump = tmp_path / "kasal.dump"
            await asyncio.to_thread(subprocess.run, [
                pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}",
                plain_postgres_url(source)], check=True, timeout=120)
            await asyncio.to_thread(subprocess.run, [
                pg_tool("pg_restore"), "--no-owner", "--exit-on-error",
                f"--dbname={plain_postgres_url(target)}", str(dump)], check=True, timeout=120)
            verified = await asyncio.to_thread(
                subprocess.run, [*KASAL, "audit", "verify", "--data-dir", str(tmp_path / "b")],
                cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                env={**os.environ, "DATABASE_TYPE": "postgres", "DATABASE_URL": target,
                     "KASAL_VECTOR_SEARCH": "false"})
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert "verified 1 events in 1 aggregates" in verified.stdout, verified.stdout
            restored = await bootstrap(pg(tmp_path / "c", target))
            await restored.start()
            try:
                assert await roles(restored) == ["Owl Counter"]
                await define(restored, "After Restore")
                assert await roles(restored) == ["After Restore", "Owl Counter"]
            finally:
                await restored.stop()
        finally:
            await drop_database(source)
            await drop_database(target)

    asyncio.run(scenario())
