"""``kasal knowledge``: documents that agents and crews know (``knowledge_sources``)."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.crewai.project_knowledge import read_document
from commands import messages as m
from commands.context import CommandContext
from kasal.bootstrap import Kasal
from kasal.cli_support import data_dir_option, load_settings, with_kasal

tenant_option = click.option("--tenant", default=None, help="defaults to KASAL_DEFAULT_TENANT")


@click.group()
def knowledge() -> None:
    """Add and list knowledge sources (name their ids in an agent's or crew's
    knowledge_sources)."""


@knowledge.command("add")
@data_dir_option
@tenant_option
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def knowledge_add(data_dir: Path, tenant: str | None, files: tuple[Path, ...]) -> None:
    """Add FILES (.txt, .md, .csv, .json, .pdf) as knowledge sources: one id per file."""
    documents = []
    for file in files:  # every file read before anything is added
        try:
            documents.append(read_document(file))
        except ValueError as error:
            raise click.ClickException(str(error)) from None

    async def work(kasal: Kasal) -> list[str]:
        tenant_id = tenant or kasal.settings.default_tenant
        added = []
        for doc in documents:
            result = await kasal.bus.dispatch(
                m.AddKnowledgeSource(name=doc.name, text=doc.text, media_type=doc.media_type,
                                     origin=doc.origin),
                CommandContext(tenant_id=tenant_id, actor="cli"))
            added.append(f"{result.aggregate_id}\t{doc.name}\t{doc.media_type}\t"
                         f"{len(doc.text)} characters")
        return added

    for line in with_kasal(load_settings(data_dir), work):
        click.echo(line)


@knowledge.command("list")
@data_dir_option
@tenant_option
@click.option("--archived", is_flag=True, help="archived sources too")
def knowledge_list(data_dir: Path, tenant: str | None, archived: bool) -> None:
    """The tenant's knowledge sources: id, name, media type, chunks, characters."""

    async def work(kasal: Kasal) -> list[str]:
        if kasal.settings.mode == "embedded":  # no server runs beside it (the data dir's
            await kasal.catch_up()             # lock): the read models are this process's
        page = await kasal.read_models.list_knowledge_sources(
            tenant or kasal.settings.default_tenant, include_archived=archived, limit=500)
        return [f"{s['id']}\t{s['name']}\t{s['media_type']}\t{s['chunks']}\t{s['characters']}"
                + ("\tarchived" if s["archived"] else "") for s in page.items]

    for line in with_kasal(load_settings(data_dir), work):
        click.echo(line)
