"""``kasal executions``: the common inspections of runs, from the read models (beside a
running server too), and a cancel through the command bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from commands import messages as m
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from domain.errors import DomainError
from domain.vocabulary import ExecutionStatus
from kasal.bootstrap import Kasal
from kasal.cli_support import data_dir_option, load_settings, with_kasal

tenant_option = click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")


@click.group()
def executions() -> None:
    """List, show, follow the steps of, and cancel executions."""


def _tenant(kasal: Kasal, tenant: str | None) -> str:
    return tenant or kasal.settings.default_tenant


async def _execution(kasal: Kasal, tenant: str | None, execution_id: str) -> dict[str, Any]:
    found = (await kasal.read_models.get_execution(_tenant(kasal, tenant), execution_id)).item
    if found is None:
        raise click.ClickException(f"no execution {execution_id} in tenant "
                                   f"{_tenant(kasal, tenant)!r}")
    return dict(found)


@executions.command("list")
@data_dir_option
@tenant_option
@click.option("--status", default=None, help="only executions with this status",
              type=click.Choice([s.value for s in ExecutionStatus]))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def executions_list(data_dir: Path, tenant: str | None, status: str | None,
                    limit: int) -> None:
    """The newest executions: id, status, crew, requested at, tokens."""

    async def work(kasal: Kasal) -> list[dict[str, Any]]:
        page = await kasal.read_models.list_executions(_tenant(kasal, tenant), status=status,
                                                       limit=limit)
        return [dict(item) for item in page.items]

    for row in with_kasal(load_settings(data_dir), work):
        click.echo("\t".join(str(row[k]) for k in (
            "id", "status", "crew_name", "requested_at", "total_tokens")))


@executions.command("show")
@data_dir_option
@tenant_option
@click.argument("execution_id")
def executions_show(data_dir: Path, tenant: str | None, execution_id: str) -> None:
    """One execution as JSON: status, tasks with their outputs, result, error, usage."""
    view = with_kasal(load_settings(data_dir), lambda k: _execution(k, tenant, execution_id))
    click.echo(json.dumps(view, indent=2, ensure_ascii=False, default=str))


@executions.command("logs")
@data_dir_option
@tenant_option
@click.argument("execution_id")
def executions_logs(data_dir: Path, tenant: str | None, execution_id: str) -> None:
    """Every step of an execution, one line each: version, time, type, what happened."""

    async def work(kasal: Kasal) -> list[dict[str, Any]]:
        await _execution(kasal, tenant, execution_id)
        timeline = await kasal.read_models.execution_timeline(_tenant(kasal, tenant),
                                                              execution_id)
        return [dict(item) for item in timeline.items]

    for entry in with_kasal(load_settings(data_dir), work):
        click.echo(f"{entry['version']}\t{entry['occurred_at']}\t{entry['type']}\t"
                   f"{entry['summary']}")


@executions.command("cancel")
@data_dir_option
@tenant_option
@click.argument("execution_id")
@click.option("--reason", default="cancelled by user", show_default=True)
def executions_cancel(data_dir: Path, tenant: str | None, execution_id: str,
                      reason: str) -> None:
    """Cancel an execution: at once if it has not started, else at its runner's next step
    (the runner of a server on this data dir, or of the distributed workers)."""

    async def work(kasal: Kasal) -> str:
        tenant_id = _tenant(kasal, tenant)
        try:  # the log decides (a request not yet projected can be cancelled too)
            result = await kasal.bus.dispatch(
                m.CancelExecution(execution_id=execution_id, reason=reason),
                CommandContext(tenant_id=tenant_id, actor="cli"))
        except DomainError as error:  # unknown, finished, already cancelled
            raise click.ClickException(str(error)) from None
        except ValidationError as error:
            raise click.ClickException(f"{execution_id!r} is not an execution id: "
                                       f"{error.errors()[0]['msg']}") from None
        except StoreUnavailable as error:
            raise click.ClickException(
                f"the log did not answer ({error}): the cancel may or may not be recorded; "
                "run it again (a repeat says so if it was)") from None
        return (f"{execution_id}: cancel recorded at log position {result.position}; a run "
                "not started is cancelled, a running one stops at its runner's next step "
                "(reads show it once a server or worker has projected it)")

    click.echo(with_kasal(load_settings(data_dir), work))
