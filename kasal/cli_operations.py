"""Operator commands of ``kasal``: rebuild the read models, verify the log, make a key,
provision the Kafka topics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from domain.envelope import verify_chain
from domain.errors import TamperedEvent
from kasal.bootstrap import Kasal
from kasal.cli_support import data_dir_option, load_settings, with_kasal
from kasal.settings import Settings


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

    position = with_kasal(settings, work, with_vectors=True)
    click.echo(f"rebuilt read models up to position {position}")


@click.group()
def audit() -> None:
    """Audit the event log."""


@audit.command("verify")
@data_dir_option
def audit_verify(data_dir: Path) -> None:
    """Verify every aggregate's hash chain in the event log."""
    settings = load_settings(data_dir)

    async def work(kasal: Kasal) -> dict[str, Any]:
        streams: dict[str, int] = {}
        position = 0
        while batch := await kasal.store.read_all(position, 5000):
            for event in batch:
                streams.setdefault(event.aggregate_id, 0)
            position = batch[-1].position
        failures = []
        events = 0
        for aggregate_id in streams:
            try:
                events += verify_chain(await kasal.store.read_stream(aggregate_id))
            except TamperedEvent as error:
                failures.append(str(error))
        failures += await kasal.integrity_problems()
        return {"aggregates": len(streams), "events": events, "failures": failures}

    report = with_kasal(settings, work)
    for failure in report["failures"]:
        click.echo(f"TAMPERED: {failure}", err=True)
    click.echo(f"verified {report['events']} events in {report['aggregates']} aggregates")
    if report["failures"]:
        raise SystemExit(1)


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

    settings = Settings()
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
