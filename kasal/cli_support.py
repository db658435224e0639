"""What the ``kasal`` commands share: the data-dir option, settings, a Kasal for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from commands import messages as m
from commands.context import CommandContext
from domain.api_key import generate_key, hash_key, key_prefix
from kasal.bootstrap import Kasal, bootstrap, prepare_offline_environment
from kasal.data_dir_lock import DataDirInUse
from kasal.settings import Settings
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


def load_settings(data_dir: Path) -> Settings:
    settings = Settings(KASAL_DATA_DIR=data_dir)
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


async def issue_key(kasal: Kasal, tenant: str, role: str, name: str, actor: str) -> str:
    key = generate_key()
    await kasal.bus.dispatch(
        m.IssueApiKey(name=name, role=role, key_hash=hash_key(key), prefix=key_prefix(key)),
        CommandContext(tenant_id=tenant, actor=actor),
    )
    return key
