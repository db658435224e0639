"""Backup and restore of the embedded deployment (``kasal backup DEST``, ``kasal restore SRC``).

A backup is a directory: the read models' SQLite database, then the event log's (in that
order, each through SQLite's online backup API, so a running server keeps serving and each
copy is one consistent snapshot; the read models are copied first, so they never reflect an
event the copied log lacks: a restored server catches them up from their tracked positions),
the tenants' workspaces, and ``manifest.json`` (the files' SHA-256 and sizes, the log's head
position, when). The vector index is not copied: a restore forgets the vector projectors'
positions, and the restored server embeds everything again from the log.

A restore checks every file against the manifest, refuses a data directory that holds a
deployment already, and writes the files into place.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.eventstore.sql_tables import events_table
from kasal.settings import Settings
from projections.schema import tracking

MANIFEST = "manifest.json"
FORMAT = "kasal-embedded-backup/1"
READ_MODELS, EVENTS, WORKSPACES = "kasal.db", "events.db", "workspaces"


class BackupError(Exception):
    """What stops a backup or a restore (one line: what to do)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    head_position: int
    files: int
    links_left_out: int = 0


def _sqlite_path(url: str, what: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise BackupError(
            f"the {what} is not a SQLite file here ({url.split(':', 1)[0]}): back up "
            "PostgreSQL with pg_dump (docs/2026-12-02-backup-restore.md)")
    return Path(url.removeprefix("sqlite:///"))


def _read_only(path: Path) -> str:
    """A read-only SQLite URI of ``path`` (escaped: '#', '?' or '%' in a path stay in it)."""
    return f"{path.resolve().as_uri()}?mode=ro"


def _copy_sqlite(source: Path, target: Path) -> None:
    """One consistent snapshot of ``source`` (SQLite's online backup: writers go on)."""
    src = sqlite3.connect(_read_only(source), uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # the copy: one file, no -wal/-shm
        finally:
            dst.close()
    finally:
        src.close()


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _head(events: Path) -> int:
    connection = sqlite3.connect(_read_only(events), uri=True)
    try:
        row = connection.execute(f"SELECT MAX(position) FROM {events_table.name}").fetchone()
    except sqlite3.Error as error:
        raise BackupError(f"{events} holds no Kasal event log ({error})") from None
    finally:
        connection.close()
    return int(row[0] or 0)


def _no_links(folder: str, names: list[str]) -> set[str]:
    """Symbolic links stay out of a backup (a link's target is not the tenant's data)."""
    return {name for name in names if (Path(folder) / name).is_symlink()}


def back_up(settings: Settings, destination: Path) -> Backup:
    events = _sqlite_path(settings.event_store_url, "event store")
    read_models = _sqlite_path(settings.read_model_url, "read-model database")
    if not events.is_file():
        raise BackupError(f"{events} not found: is {settings.data_dir} an embedded Kasal's "
                          "data directory (--data-dir)?")
    if destination.exists() and any(destination.iterdir()):
        raise BackupError(f"{destination} is not empty: back up into a new directory")
    destination.mkdir(parents=True, exist_ok=True)
    if read_models.is_file():  # first: the read models never run ahead of the copied log
        _copy_sqlite(read_models, destination / READ_MODELS)
    _copy_sqlite(events, destination / EVENTS)
    head = _head(destination / EVENTS)
    links = 0
    if settings.workspace_dir.is_dir():
        links = sum(1 for p in settings.workspace_dir.rglob("*") if p.is_symlink())
        shutil.copytree(settings.workspace_dir, destination / WORKSPACES, ignore=_no_links)
    files = {str(p.relative_to(destination)): {"sha256": _digest(p), "size": p.stat().st_size}
             for p in sorted(destination.rglob("*")) if p.is_file()}
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(),
                "head_position": head, "files": files}
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Backup(destination, head, len(files), links)


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{source / MANIFEST}: not a Kasal backup ({error})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST}: format {manifest.get('format')!r}, this Kasal "
                          f"restores {FORMAT}")
    return manifest


def restore(settings: Settings, source: Path) -> Backup:
    manifest = _manifest(source)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for name, entry in listed.items():
        path = source / name
        if not path.is_file() or _digest(path) != entry["sha256"]:
            raise BackupError(f"{path}: missing or changed since the backup (its SHA-256 is not "
                              "the manifest's): nothing was restored")
    present = {str(p.relative_to(source)) for p in source.rglob("*")
               if (p.is_file() or p.is_symlink()) and str(p.relative_to(source)) != MANIFEST}
    extra = sorted(present - set(listed))
    if extra:
        raise BackupError(f"{source}: {extra[0]} is not in the manifest: nothing was restored")
    if EVENTS not in listed:
        raise BackupError(f"{source}: the backup holds no event log: nothing was restored")
    events = _sqlite_path(settings.event_store_url, "event store")
    read_models = _sqlite_path(settings.read_model_url, "read-model database")
    if settings.qdrant_url:
        raise BackupError(
            "the vector index is a Qdrant server here (QDRANT_URL): a restore re-embeds the "
            "log into it, beside points of what the backup lacks; restore with QDRANT_URL "
            "unset (the local index), or with a KASAL_QDRANT_COLLECTION_PREFIX no deployment "
            "uses and QDRANT_URL unset first")
    taken = [p for p in (events, read_models, settings.data_dir / "qdrant") if p.exists()]
    if taken or (settings.workspace_dir.is_dir() and any(settings.workspace_dir.iterdir())):
        where = taken[0] if taken else settings.workspace_dir
        raise BackupError(f"{where} exists: restore into a new data directory (--data-dir; "
                          "SQLITE_DB_PATH and KASAL_WORKSPACE_DIR, where set, must name new "
                          "places too), never over a deployment")
    created: list[Path] = []
    try:
        for path in (events, read_models, settings.workspace_dir):
            path.parent.mkdir(parents=True, exist_ok=True)
        created.append(events)
        shutil.copyfile(source / EVENTS, events)
        if READ_MODELS in listed:
            created.append(read_models)
            shutil.copyfile(source / READ_MODELS, read_models)
            _forget_vectors(read_models)
        if (source / WORKSPACES).is_dir():
            created.append(settings.workspace_dir)
            shutil.copytree(source / WORKSPACES, settings.workspace_dir, ignore=_no_links,
                            dirs_exist_ok=True)
    except (OSError, sqlite3.Error) as error:
        _remove(created)
        raise BackupError(f"the restore into {settings.data_dir} failed ({error}): what it had "
                          "written is removed") from None
    return Backup(source, int(manifest["head_position"]), len(listed))


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _forget_vectors(read_models: Path) -> None:
    """The vector index is not in the backup: its projectors start again from the log."""
    connection = sqlite3.connect(read_models)
    try:
        with connection:
            connection.execute(f"DELETE FROM {tracking.name} WHERE name LIKE 'vectors:%'")
    except sqlite3.OperationalError:  # no tracking table yet: nothing was projected
        pass
    finally:
        connection.close()


__all__ = ["Backup", "BackupError", "back_up", "restore"]
