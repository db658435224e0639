"""The KnowledgeSource aggregate: a document a crew or an agent knows, as CrewAI's knowledge
sources give it to their tasks.

Its text is chunked when it is added (CrewAI's own rule: 4,000 characters a chunk, 200 of
overlap) and the chunks are in the event: the log holds what agents were told, the vector
index is rebuilt from it, and a resumed run recalls the same chunks. A source never changes
(add another); archiving one stops new agents and crews naming it, while those that name it
already keep it, so their runs and replays stay the same.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from eventsourcing.domain import event

from domain.base import KasalAggregate, check_text
from domain.errors import AlreadyArchived, InvalidDefinition
from domain.vocabulary import AggregateType

CHUNK_CHARS = 4000  # CrewAI's BaseKnowledgeSource.chunk_size
CHUNK_OVERLAP = 200  # and chunk_overlap
# one event must fit one Kafka request (adapters/kafka/writer.py: 900,000 bytes), encrypted
# (base64: 4/3) with its envelope: its chunks at most 600,000 bytes of UTF-8 JSON (a text
# in a script of 3-byte characters holds a third as many characters as an English one)
MAX_TEXT_CHARS = 400_000
MAX_CHUNK_BYTES = 600_000
MEDIA_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json", "application/pdf")
MAX_SOURCES = 20  # that one agent or crew names


def chunks_of(text: str) -> list[str]:
    """CrewAI's chunking (``BaseKnowledgeSource._chunk_text``): fixed windows that overlap."""
    step = CHUNK_CHARS - CHUNK_OVERLAP
    return [text[i:i + CHUNK_CHARS] for i in range(0, len(text), step)]


def checked_chunks(text: str) -> list[str]:
    """The text's chunks, or ``InvalidDefinition`` naming the limit it is over."""
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidDefinition(
            f"text is {len(text):,} characters; a knowledge source holds at most "
            f"{MAX_TEXT_CHARS:,}: split the document into several sources")
    chunks = chunks_of(text)
    size = len(json.dumps(chunks, ensure_ascii=False).encode())
    if size > MAX_CHUNK_BYTES:
        raise InvalidDefinition(
            f"text is {size:,} bytes in its chunks (UTF-8, with CrewAI's overlap); a knowledge "
            f"source holds at most {MAX_CHUNK_BYTES:,}: split the document into several sources")
    return chunks


def check_sources(where: str, ids: tuple[str, ...]) -> tuple[str, ...]:
    if len(ids) > MAX_SOURCES:
        raise InvalidDefinition(f"{where}: at most {MAX_SOURCES} knowledge sources")
    if len(set(ids)) != len(ids):
        raise InvalidDefinition(f"{where} must not name a knowledge source twice")
    return ids


class KnowledgeSource(KasalAggregate):
    AGGREGATE_TYPE = AggregateType.KNOWLEDGE

    @classmethod
    def add(cls, tenant_id: str, name: str, text: str, media_type: str,
            origin: str | None = None) -> KnowledgeSource:
        """``origin``: where the text came from (a project's file), for people reading."""
        if media_type not in MEDIA_TYPES:
            raise InvalidDefinition(f"media_type must be one of {', '.join(MEDIA_TYPES)}")
        body = check_text("text", text, max_length=MAX_TEXT_CHARS)
        return cls(
            tenant_id=tenant_id, name=check_text("name", name, max_length=200),
            media_type=media_type, origin=origin and check_text("origin", origin, max_length=500),
            sha256=hashlib.sha256(body.encode()).hexdigest(), characters=len(body),
            chunks=checked_chunks(body),
        )

    @event("Added")
    def __init__(self, tenant_id: str, name: str, media_type: str, origin: str | None,
                 sha256: str, characters: int, chunks: list[str]) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.media_type = media_type
        self.sha256 = sha256
        self.chunk_count = len(chunks)
        self.archived = False

    def archive(self) -> None:
        if self.archived:
            raise AlreadyArchived(f"knowledge source {self.id} is archived")
        self._archived()

    @event("Archived")
    def _archived(self) -> None:
        self.archived = True

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "media_type": self.media_type, "sha256": self.sha256}


__all__ = ["CHUNK_CHARS", "CHUNK_OVERLAP", "KnowledgeSource", "check_sources", "checked_chunks",
           "chunks_of"]
