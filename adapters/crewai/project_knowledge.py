"""A project's knowledge sources (``knowledge_sources=[...]`` of an agent or the crew in
crew.py) as Kasal's knowledge sources: each document's text, as CrewAI's source class read
it (``crew_reader`` describes the object it built), becomes one ``AddKnowledgeSource``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from adapters.crewai.carry import Dropped
from adapters.crewai.project_layout import ProjectError
from domain.errors import InvalidDefinition
from domain.knowledge import CHUNK_CHARS, CHUNK_OVERLAP, checked_chunks

MEDIA_TYPES = {".md": "text/markdown", ".mdx": "text/markdown", ".csv": "text/csv",
               ".json": "application/json", ".pdf": "application/pdf"}


@dataclass(frozen=True)
class KnowledgeDoc:
    name: str
    text: str
    media_type: str
    origin: str


def carry_knowledge(owner: str, value: Any, where: str) -> tuple[list[KnowledgeDoc],
                                                                  list[Dropped]]:
    """The documents of ``owner``'s knowledge sources (as described), and what is not
    carried; a document too long for one source refuses the import, naming it."""
    docs: list[KnowledgeDoc] = []
    dropped: list[Dropped] = []
    for index, source in enumerate(value if isinstance(value, list) else [value]):
        label = f"{owner}: knowledge source {index}"
        if not isinstance(source, dict) or "knowledge" not in source:
            dropped.append(Dropped(f"{label} ({source!r:.60})", where,
                                   "not a CrewAI knowledge source: the run goes without it"))
            continue
        kind = str(source["knowledge"])
        if (source.get("chunk_size"), source.get("chunk_overlap")) != (CHUNK_CHARS,
                                                                         CHUNK_OVERLAP):
            dropped.append(Dropped(f"{label} {kind} chunk_size/chunk_overlap", where,
                                   f"chunked as CrewAI's defaults chunk ({CHUNK_CHARS} "
                                   f"characters, {CHUNK_OVERLAP} of overlap)"))
        documents = source.get("documents") or []
        if not documents:
            dropped.append(Dropped(f"{label} {kind}", where,
                                   "it holds no text Kasal can read: the run goes without it"))
        for number, document in enumerate(documents):
            text, origin = str(document.get("text") or ""), document.get("origin")
            name = PurePosixPath(str(origin)).name if origin else f"{kind} {index}.{number}"
            if not text.strip():
                dropped.append(Dropped(f"{label} {origin or kind}", where,
                                       "it is empty: nothing to know"))
                continue
            try:
                checked_chunks(text)
            except InvalidDefinition as error:
                raise ProjectError(f"{origin or where}: {owner}'s knowledge source: {error}"
                                   ) from None
            media = MEDIA_TYPES.get(PurePosixPath(str(origin or "")).suffix.lower(),
                                    "text/plain")
            docs.append(KnowledgeDoc(name[:200], text, media, str(origin or where)[:500]))
    return docs, dropped


def read_document(path: Path) -> KnowledgeDoc:
    """A file's text as CrewAI's knowledge source class for its kind reads it (a PDF's text
    through pdfplumber, a CSV's rows, a JSON document flattened, any other file as UTF-8
    text); ``ValueError`` saying why it cannot be read."""
    media = MEDIA_TYPES.get(path.suffix.lower(), "text/plain")
    if media == "text/plain" or media == "text/markdown":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not UTF-8 text (Kasal reads .txt, .md, .csv, .json "
                             "and .pdf files)") from None
    else:
        text = _read_with_crewai(path, media)
    try:
        checked_chunks(text)
    except InvalidDefinition as error:
        raise ValueError(f"{path}: {error}") from None
    if not text.strip():
        raise ValueError(f"{path}: no text in it")
    return KnowledgeDoc(path.name[:200], text, media, str(path)[:500])


def _read_with_crewai(path: Path, media: str) -> str:
    from crewai.knowledge.source.csv_knowledge_source import CSVKnowledgeSource
    from crewai.knowledge.source.json_knowledge_source import JSONKnowledgeSource
    from crewai.knowledge.source.pdf_knowledge_source import PDFKnowledgeSource

    kinds: dict[str, type[CSVKnowledgeSource | JSONKnowledgeSource | PDFKnowledgeSource]] = {
        "text/csv": CSVKnowledgeSource, "application/json": JSONKnowledgeSource,
        "application/pdf": PDFKnowledgeSource}
    kind = kinds[media]
    try:
        source = kind(file_paths=[path.resolve()])
    except Exception as error:  # the class's own parse error (a broken PDF, bad JSON...)
        raise ValueError(f"{path}: CrewAI's {kind.__name__} cannot read it: {error}") from None
    return "\n".join(str(text) for text in source.content.values())
