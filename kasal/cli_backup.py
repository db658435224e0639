"""``kasal backup DEST`` and ``kasal restore SRC``: the embedded deployment's data, consistent
while the server runs (``kasal.backup``); a restore is verified by ``kasal audit verify``."""

from __future__ import annotations

from pathlib import Path

import click

from kasal.backup import BackupError, back_up, restore
from kasal.cli_support import data_dir_option, load_settings, with_kasal


@click.command("backup")
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
def backup(destination: Path, data_dir: Path) -> None:
    """Back up the embedded deployment at --data-dir into DESTINATION (a new directory):
    the event log and read models (SQLite's online backup: a running server goes on), the
    tenants' workspaces and a manifest of SHA-256s. The vector index is rebuilt on restore."""
    try:
        made = back_up(load_settings(data_dir), destination)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"backed up {made.files} files, the log up to position {made.head_position}, "
               f"into {destination}")
    if made.links_left_out:
        click.echo(f"left out {made.links_left_out} symbolic link(s) in the workspaces (a "
                   "link's target is not the tenant's data)")


@click.command("restore")
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
@data_dir_option
def restore_backup(source: Path, data_dir: Path) -> None:
    """Restore the backup in SOURCE into --data-dir (a new data directory), checking every
    file against its manifest, then verify the restored log as 'kasal audit verify' does."""
    from kasal.audit_verify import verify_log

    settings = load_settings(data_dir)
    try:
        made = restore(settings, source)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"restored {made.files} files, the log up to position {made.head_position}, "
               f"into {data_dir}")
    # a backup from an older Kasal: its read models are rebuilt (nothing else runs on them)
    report = with_kasal(settings, verify_log, rebuild_schema=True)
    for failure in report.failures:
        click.echo(f"TAMPERED: {failure}", err=True)
    click.echo(f"verified {report.events} events in {report.aggregates} aggregates")
    if report.failures:
        raise SystemExit(1)
