"""``kasal workspace``: the files a tenant's agents' file tools may read and write."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.crewai.workspace import Workspace, WorkspaceError
from kasal.cli_support import data_dir_option, load_settings


@click.group()
def workspace() -> None:
    """A tenant's workspace (KASAL_WORKSPACE_DIR/<tenant>): where file tools work."""


@workspace.command("put")
@data_dir_option
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "target", default=None, metavar="PATH",
              help="the path in the workspace (one file only; default: its name)")
@click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")
def workspace_put(data_dir: Path, files: tuple[Path, ...], target: str | None,
                  tenant: str | None) -> None:
    """Copy FILES into the tenant's workspace."""
    settings = load_settings(data_dir)
    space = Workspace(settings.workspace_dir, tenant or settings.default_tenant)
    if target is not None and len(files) != 1:
        raise click.ClickException("--as names one file: give one FILE")
    for file in files:
        try:
            placed = space.put(target or file.name, file.read_bytes())
        except WorkspaceError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{space.relative(placed)} ({placed.stat().st_size} bytes)")


@workspace.command("list")
@data_dir_option
@click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")
def workspace_list(data_dir: Path, tenant: str | None) -> None:
    """The files in the tenant's workspace."""
    settings = load_settings(data_dir)
    space = Workspace(settings.workspace_dir, tenant or settings.default_tenant)
    for path, size in space.files():
        click.echo(f"{path}\t{size}")
