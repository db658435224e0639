"""The PostgreSQL that tests use: ``KASAL_TEST_POSTGRES_URL`` (``make test`` sets it), else the
local test cluster's default URL. A test fails loudly when nothing listens: none is skipped."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://kasal:kasal@127.0.0.1:55432/kasal_test"
POSTGRES_URL = os.environ.get("KASAL_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def plain_postgres_url(url: str = POSTGRES_URL) -> str:
    """The URL for a raw asyncpg connection (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(plain_postgres_url())
    except (OSError, asyncpg.PostgresError) as error:
        shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {shown} is not reachable ({error}); start it with "
            "`make services-up` or set KASAL_TEST_POSTGRES_URL",
            pytrace=False,
        )


async def create_schema() -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    conn = await connect()
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return name


async def drop_schema(name: str) -> None:
    conn = await connect()
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def create_database() -> str:
    """A fresh database on the test server; returns its URL."""
    name = "kasal_" + uuid.uuid4().hex[:12]
    conn = await connect()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    name = make_url(url).database
    conn = await connect()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
