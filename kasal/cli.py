"""The ``kasal`` command line: serving, working, keys, seeding, importing and running crews
here; operator commands in ``kasal/cli_operations.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from commands.errors import StoreUnavailable
from domain.api_key import ROLES
from domain.errors import DomainError
from domain.vocabulary import ExecutionStatus
from kasal import cli_backup, cli_executions, cli_knowledge, cli_operations, cli_workspace
from kasal.bootstrap import bootstrap
from kasal.cli_support import (
    data_dir_option,
    first_admin_key,
    issue_key,
    load_settings,
    refuse_default_admin,
    with_kasal,
)
from kasal.data_dir_lock import DataDirInUse
from projections.connections import ReadModelUnavailable
from projections.schema import ReadModelSchemaChanged


@click.group()
def main() -> None:
    """Kasal: define and run CrewAI agent crews on an event-sourced core."""


@main.command()
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(data_dir: Path, host: str, port: int) -> None:
    """Run the API and the processors in one process (embedded deployment)."""
    import uvicorn

    from kasal.logs import configure
    from kasal.seed import seed
    from kasal.web import build_app

    settings = load_settings(data_dir)
    refuse_default_admin(settings)
    configure(settings.log_level, settings.log_dir, settings.sql_debug, settings.log_format)

    distributed = settings.mode == "distributed"

    async def run() -> None:
        # distributed: this process serves the API; 'kasal worker' runs the processors
        try:
            kasal = await bootstrap(settings, role="api" if distributed else "all")
        except (StoreUnavailable, DataDirInUse) as error:
            raise click.ClickException(str(error)) from None
        except (OSError, DBAPIError) as error:
            raise click.ClickException(f"cannot reach the database ({error})") from None
        try:
            await kasal.start()
        except ReadModelSchemaChanged as error:
            await kasal.stop()
            raise click.ClickException(str(error)) from None
        except (StoreUnavailable, ReadModelUnavailable) as error:
            await kasal.stop()
            raise click.ClickException(f"{error}: is the database up?") from None
        try:
            try:
                key, where = await first_admin_key(kasal)
            except StoreUnavailable as error:
                raise click.ClickException(
                    f"could not issue the first admin key: {error}. In the distributed "
                    "deployment start 'kasal worker' (after 'kasal kafka init') first."
                ) from None
            if settings.auto_seed_database:
                await seed(kasal.bus, settings.default_tenant, settings.default_llm)
                click.echo("Seeded a sample crew 'research-and-write' (AUTO_SEED_DATABASE).")
            base = f"http://{host}:{port}"
            if distributed:
                click.echo(f"Kasal (distributed, API) serving on {base}; Kafka at "
                           f"{settings.kafka_bootstrap_servers}")
            else:
                click.echo(f"Kasal (embedded) serving on {base}; data in {settings.data_dir}")
            if settings.docs_enabled:
                click.echo(f"  API docs:   {base}/api-docs")
            if where is not None:  # the one this process made: shown, and where it is kept
                click.echo(f"  Admin key:  {key}   (also in {where})")
            shown = key if where is not None else "$KASAL_ADMIN_KEY"
            click.echo(f"  Try:        curl -H 'Authorization: Bearer {shown}' "
                       f"{base}/api/v1/crews")
            app = build_app(kasal, manage_lifecycle=False)
            # log_config=None: uvicorn's own lines go through Kasal's handlers and format
            config = uvicorn.Config(app, host=host, port=port, log_config=None,
                                    log_level=settings.log_level.lower())
            await uvicorn.Server(config).serve()
        finally:
            await kasal.stop()

    asyncio.run(run())


@main.command()
@data_dir_option
def worker(data_dir: Path) -> None:
    """Run a worker of the distributed deployment (KASAL_MODE=distributed): the single
    writer of its Kafka partitions, the log mirror and, while it leads, the projectors
    and the execution runner. Start several; they share the partitions."""
    import signal

    from adapters.kafka.log_worker import WorkerError
    from kasal.logs import configure
    from kasal.worker import run_worker

    settings = load_settings(data_dir)
    configure(settings.log_level, settings.log_dir, settings.sql_debug, settings.log_format)
    if settings.mode != "distributed":
        raise click.UsageError("kasal worker runs the distributed deployment: set "
                               "KASAL_MODE=distributed (and KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL)")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"kasal worker: Kafka {settings.kafka_bootstrap_servers}, prefix "
                   f"{settings.kafka_prefix!r}, {settings.kafka_partitions} partitions")
        await run_worker(settings, stop)

    try:
        asyncio.run(run())
    except WorkerError as error:
        raise click.ClickException(str(error)) from None


@main.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command("create")
@data_dir_option
@click.option("--tenant", required=True, help="the tenant the key belongs to")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", default="cli", show_default=True, help="a label for the key")
def apikey_create(data_dir: Path, tenant: str, role: str, name: str) -> None:
    """Issue an API key; the key is printed alone on the last line."""
    settings = load_settings(data_dir)
    try:
        key = with_kasal(settings, lambda k: issue_key(k, tenant, role, name, "cli"))
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Issued an API key with role {role} for tenant {tenant!r} (shown once):")
    click.echo(key)


@main.command("seed")
@data_dir_option
@click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")
def seed_command(data_dir: Path, tenant: str | None) -> None:
    """Define the sample agents and crew (idempotent)."""
    from kasal.seed import seed

    settings = load_settings(data_dir)
    result = with_kasal(
        settings,
        lambda k: seed(k.bus, tenant or settings.default_tenant, settings.default_llm),
    )
    click.echo(f"crew research-and-write: {result.aggregate_id}")


crew_option = click.option("--crew", default=None, metavar="NAME",
                           help="which crew, where the project holds several")
strict_option = click.option("--strict", is_flag=True,
                             help="refuse the project if anything is not carried over")


@main.command("import")
@data_dir_option
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")
@crew_option
@strict_option
def import_command(data_dir: Path, path: Path, tenant: str | None, crew: str | None,
                   strict: bool) -> None:
    """Define a CrewAI project's agents and crew (its root, src/<pkg>, config/, or a crew
    file): the crew its crew.py builds, or its config/*.yaml; lists what is not carried over."""
    from rich.console import Console

    from kasal.bootstrap import Kasal
    from kasal.projects import import_project, place_files, read_project

    settings = load_settings(data_dir)
    project = read_project(path, settings.default_llm, crew, strict=strict, console=Console(),
                           allow_code=settings.allow_project_code)
    chosen = tenant or settings.default_tenant

    async def define(k: Kasal) -> str:
        place_files(k, project, chosen, Console())  # first: a file that cannot go defines nothing
        return await import_project(k, project, chosen)

    try:
        crew_id = with_kasal(settings, define)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"crew {project.name}: {crew_id}")


@main.command("run")
@data_dir_option
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE", help="repeatable")
@click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")
@click.option("--timeout", "timeout_s", type=float, default=None, help="seconds")
@crew_option
@strict_option
def run_command(
    data_dir: Path, path: Path, inputs: tuple[str, ...], tenant: str | None,
    timeout_s: float | None, crew: str | None, strict: bool,
) -> None:
    """Run a crew (a CrewAI project or a crew file) end to end and print the result; the
    inputs main.py passes are the defaults of --input."""
    from rich.console import Console

    from kasal.projects import parse_inputs, print_outcome, read_project, run_project

    settings = load_settings(data_dir)
    console = Console()
    try:
        given = parse_inputs(inputs)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    project = read_project(path, settings.default_llm, crew, strict=strict, console=console,
                           allow_code=settings.allow_project_code)

    async def run() -> dict[str, Any]:
        kasal = await bootstrap(settings)
        await kasal.start()
        try:
            return await run_project(
                kasal, project, {**project.default_inputs, **given},
                tenant=tenant or settings.default_tenant, timeout_s=timeout_s, console=console,
            )
        finally:
            await kasal.stop()

    try:
        view = asyncio.run(run())
    except (DomainError, ValueError, DataDirInUse, ReadModelSchemaChanged) as error:
        raise click.ClickException(str(error)) from None
    print_outcome(view, console)
    if view["status"] != ExecutionStatus.COMPLETED:
        raise SystemExit(1)


for command in (cli_backup.backup, cli_backup.restore_backup,
                cli_operations.projections, cli_operations.audit, cli_operations.keygen,
                cli_operations.kafka, cli_workspace.workspace, cli_executions.executions,
                cli_knowledge.knowledge):
    main.add_command(command)
