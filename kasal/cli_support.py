"""What the ``kasal`` commands share: the data-dir option, settings, a Kasal for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from pydantic import ValidationError

from commands import messages as m
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from domain.api_key import generate_key, hash_key, key_prefix
from kasal.bootstrap import Kasal, bootstrap, prepare_offline_environment
from kasal.data_dir_lock import DataDirInUse
from kasal.settings import Settings
from projections.connections import ReadModelUnavailable
from projections.schema import ReadModelSchemaChanged

T = TypeVar("T")

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="KASAL_DATA_DIR",
    default=Path(".kasal"),
    show_default=True,
    help="where embedded Kasal keeps its data (env KASAL_DATA_DIR)",
)


def read_settings(**given: object) -> Settings:
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as error:  # one line per setting to fix, no traceback
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise click.ClickException(f"configuration: {problems}") from None


def load_settings(data_dir: Path) -> Settings:
    settings = read_settings(KASAL_DATA_DIR=data_dir)
    prepare_offline_environment(settings)
    return settings


def with_kasal(
    settings: Settings, work: Callable[[Kasal], Awaitable[T]], *, with_vectors: bool = False,
    rebuild_schema: bool = False,
) -> T:
    async def run() -> T:
        kasal = await bootstrap(settings, run_executions=False, with_vectors=with_vectors)
        try:
            await kasal.start(run_processors=False, rebuild_schema=rebuild_schema)
        except BaseException:
            await kasal.stop()
            raise
        try:
            return await work(kasal)
        finally:
            await kasal.stop()

    try:
        return asyncio.run(run())
    except (DataDirInUse, ReadModelSchemaChanged) as error:
        raise click.ClickException(str(error)) from None
    except (StoreUnavailable, ReadModelUnavailable) as error:
        raise click.ClickException(f"{error}: is the database (or the broker) up?") from None


async def issue_key(kasal: Kasal, tenant: str, role: str, name: str, actor: str) -> str:
    key = generate_key()
    await kasal.bus.dispatch(
        m.IssueApiKey(name=name, role=role, key_hash=hash_key(key), prefix=key_prefix(key)),
        CommandContext(tenant_id=tenant, actor=actor),
    )
    return key


async def first_admin_key(kasal: Kasal) -> tuple[str, Path | None]:
    """The default tenant's first admin key, and the file it is kept in (None: the operator's
    ``KASAL_ADMIN_KEY``, registered under a command id its hash names, so a restart appends
    nothing). Without it, development makes one and writes it to DATA_DIR/admin.key;
    production refuses (``refuse_default_admin``, before anything starts)."""
    settings = kasal.settings
    if settings.admin_key:
        digest = hash_key(settings.admin_key)
        await kasal.bus.dispatch(
            m.IssueApiKey(name="first admin", role="admin", key_hash=digest,
                          prefix=key_prefix(settings.admin_key)),
            CommandContext(tenant_id=settings.default_tenant, actor="system:bootstrap",
                           command_id=f"bootstrap-admin:{digest[:40]}"),
        )
        return settings.admin_key, None
    refuse_default_admin(settings)
    key_file = settings.data_dir / "admin.key"
    if not key_file.exists():
        key = await issue_key(kasal, settings.default_tenant, "admin", "first admin",
                              "system:bootstrap")
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        click.echo(f"Created an admin key for tenant {settings.default_tenant!r}.")
    return key_file.read_text().strip(), key_file


def refuse_default_admin(settings: Settings) -> None:
    if settings.environment == "production" and not settings.admin_key:
        raise click.ClickException(
            "KASAL_ENV=production: set KASAL_ADMIN_KEY to the first admin key (at least 32 "
            "characters, e.g. from 'openssl rand -hex 32'); production does not make one and "
            "write it to the data dir")
