"""Operator commands of ``kasal``: rebuild the read models, verify the log, make a key,
provision the Kafka topics."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kasal.bootstrap import Kasal
from kasal.cli_support import data_dir_option, load_settings, read_settings, with_kasal
from projections.processor_health import quarantine_event


@click.group()
def projections() -> None:
    """Read models."""


@projections.command("rebuild")
@data_dir_option
def projections_rebuild(data_dir: Path) -> None:
    """Drop the SQL read models and rebuild them from the event log (stop the server first)."""
    settings = load_settings(data_dir)

    async def work(kasal: Kasal) -> int:
        await kasal.projector.rebuild()
        if kasal.search is not None:
            await kasal.search.projector.rebuild()
        return await kasal.catch_up()

    position = with_kasal(settings, work, with_vectors=True, rebuild_schema=True)
    click.echo(f"rebuilt read models up to position {position}")


@projections.command("failures")
@data_dir_option
@click.option("--payload", "show_payload", is_flag=True,
              help="print the event's payload too (it holds a tenant's data)")
def projections_failures(data_dir: Path, show_payload: bool) -> None:
    """Show the projectors that cannot get past an event, and the event; exit 1 if any."""
    settings = load_settings(data_dir)
    reports = with_kasal(settings, lambda k: failure_reports(k, show_payload=show_payload))
    for line in reports:
        click.echo(line)
    if reports:
        raise SystemExit(1)
    click.echo("every processor goes on")


async def failure_reports(kasal: Kasal, *, show_payload: bool = False) -> list[str]:
    lines = []
    for failure in await kasal.processor_failures():
        lines.append(failure.describe())
        found = await kasal.store.read_all(failure.position - 1, 1)
        if found and found[0].position == failure.position:
            event = found[0]
            lines.append(f"  event {event.event_id} v{event.version}, tenant {event.tenant_id}, "
                         f"by {event.actor}, at {event.occurred_at}, command {event.command_id}")
            lines.append("  payload " + (
                json.dumps(dict(event.payload), ensure_ascii=True)[:2000] if show_payload
                else f"fields {', '.join(sorted(event.payload))} (--payload to print it)"))
        if failure.processor == kasal.projector.name:
            lines.append(f"  to set it aside: kasal projections quarantine {failure.position} "
                         "--reason '...'  (docs/2026-12-01-stuck-projectors.md)")
    return lines


@projections.command("quarantine")
@data_dir_option
@click.argument("position", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="why, for the audit of the repair")
def projections_quarantine(data_dir: Path, position: int, reason: str) -> None:
    """Set the event at POSITION aside: the SQL projector keeps it in the audit log only and
    goes on (its read models will not show what it said)."""
    settings = load_settings(data_dir)

    async def work(kasal: Kasal) -> None:
        found = await kasal.store.read_all(position - 1, 1)
        if not found or found[0].position != position:
            raise click.ClickException(f"there is no event at position {position}")
        if not await quarantine_event(kasal.projector.engine, kasal.projector.name, position,
                                      reason, by="cli"):
            raise click.ClickException(f"position {position} is set aside already")

    with_kasal(settings, work)
    click.echo(f"position {position} is set aside for the SQL projector; it goes on at its "
               "next attempt")


@click.group()
def audit() -> None:
    """Audit the event log."""


@audit.command("verify")
@data_dir_option
def audit_verify(data_dir: Path) -> None:
    """Verify the event log: every aggregate's hash chain, the log chain over the global
    order and its head, the accepted commands, and the read side's copy of the trail."""
    from kasal.audit_verify import verify_log

    report = with_kasal(load_settings(data_dir), verify_log)
    for failure in report.failures:
        click.echo(f"TAMPERED: {failure}", err=True)
    click.echo(f"verified {report.events} events in {report.aggregates} aggregates")
    if report.failures:
        raise SystemExit(1)


@audit.command("restore-head")
@click.option("--reason", required=True, help="why, for the operator's own record")
@data_dir_option
def audit_restore_head(data_dir: Path, reason: str) -> None:
    """Record the log's head where the log now ends, after its head record was removed (the
    store refuses to append without one). Run 'kasal audit verify' first: what it reports
    about the log before this point stays true, and is no longer visible afterwards."""
    from adapters.eventstore.log_chain import restore_head

    async def work(kasal: Kasal) -> int:
        log = kasal.sql_log()
        if log is None:
            raise click.ClickException("this deployment's event store keeps no SQL log")
        try:
            async with log.writer.begin() as conn:
                return (await restore_head(conn)).position
        except ValueError as error:
            raise click.ClickException(str(error)) from None

    position = with_kasal(load_settings(data_dir), work)
    click.echo(f"the log's head is recorded at position {position} ({reason})")


@click.command()
def keygen() -> None:
    """Print a new AES-256 key for KASAL_ENCRYPTION_KEY."""
    from adapters.eventstore.encryption import new_key

    click.echo(new_key())


@click.group()
def kafka() -> None:
    """Kafka topics of the distributed deployment."""


@kafka.command("init")
@click.option("--bootstrap", default=None, metavar="HOST:PORT[,...]",
              help="defaults to KAFKA_BOOTSTRAP_SERVERS")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="partitions per topic; defaults to KASAL_KAFKA_PARTITIONS (6)")
@click.option("--replication-factor", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--prefix", default=None, help="topic name prefix; defaults to KASAL_KAFKA_PREFIX")
def kafka_init(
    bootstrap: str | None, partitions: int | None, replication_factor: int, prefix: str | None
) -> None:
    """Create Kasal's topics (idempotent); refuse if existing ones disagree."""
    from adapters.kafka.admin import KafkaAdminError, KafkaTopicAdmin, TopicConflict, kasal_topics

    settings = read_settings()
    bootstrap = bootstrap or settings.kafka_bootstrap_servers
    specs = kasal_topics(
        prefix=prefix or settings.kafka_prefix, partitions=partitions or settings.kafka_partitions,
        replication_factor=replication_factor,
    )
    try:
        with KafkaTopicAdmin(bootstrap) as admin:
            report = admin.ensure_topics(specs)
    except TopicConflict as conflict:
        for problem in conflict.problems:
            click.echo(f"conflict: {problem}", err=True)
        raise click.ClickException(
            "existing topics disagree with Kasal's layout; nothing was created. Fix or delete "
            "them (or choose another --prefix) and run again."
        ) from None
    except KafkaAdminError as error:
        raise click.ClickException(str(error)) from None
    for topic in report.existing:
        click.echo(
            f"exists   {topic.name}  partitions={topic.partitions} "
            f"replication={topic.replication_factor}"
        )
    for spec in report.created:
        settings_shown = " ".join(f"{k}={v}" for k, v in sorted(spec.configs.items()))
        click.echo(
            f"created  {spec.name}  partitions={spec.partitions} "
            f"replication={spec.replication_factor} {settings_shown}"
        )
    click.echo(
        f"{len(report.created)} created, {len(report.existing)} already present on {bootstrap}"
    )
