"""SQLAlchemy engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs; pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_url(path: Path | str) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"


def make_engine(
    url: str,
    *,
    echo: bool = False,
    schema: str | None = None,
    immediate: bool = False,
    durable: bool = True,
) -> AsyncEngine:
    """An engine; for SQLite, WAL with a busy timeout, and ``BEGIN IMMEDIATE`` if asked.

    ``immediate`` takes SQLite's write lock when a transaction begins, so that two
    writers never both read and then both try to upgrade (which SQLite refuses).
    ``durable=False`` (read models: rebuildable from the log) syncs WAL at checkpoints
    only (``synchronous=NORMAL``): a power cut may undo the last commits, never corrupt,
    and the projector re-projects them from its tracked position.
    """
    url = async_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        if immediate:  # one writer connection: in-process appends queue on the pool
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, immediate=immediate, durable=durable)
        return engine
    if schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    kwargs["pool_pre_ping"] = True
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, durable: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
