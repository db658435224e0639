"""crewai-tools' RAG search tools over the tenant's workspace, searched with Kasal's own
embedding model and vector index instead of crewai-tools' default (chromadb with a hosted
embedding model, which this platform never calls).

Each keeps its crewai-tools name, argument names and answer (``Relevant Content:`` and the
chunks, or ``No relevant content found.``), and reads and chunks a file with crewai-tools'
own loader and chunker for its kind (``crewai_tools.rag``: PyMuPDF for a PDF, python-docx
for a DOCX, rows for a CSV...). Paths are the workspace's (``Workspace.resolve``): one that
leaves it is a refused call. A call searches the file the tool was configured with, or the
one it names (crewai-tools' tools also keep every file added before, so a run's answers
would depend on the order of its calls). The chunks go to ``RunHooks.search_documents``,
which embeds a document once per tenant (keyed by its text's SHA-256) into the vector index
and searches it there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure
from pydantic import BaseModel, Field, PrivateAttr, create_model

from adapters.crewai.workspace import Workspace, WorkspaceError
from projections.vectors import Document
from streams.engine import RunHooks

MAX_FILES = 200  # that one directory search reads
MAX_TEXT_CHARS = 1_000_000  # of one file
MAX_TOTAL_CHARS = 2_000_000  # of all the files one call reads
RESULTS = 5  # crewai-tools' RagTool.limit


@dataclass(frozen=True)
class SearchKind:
    tool_name: str  # crewai-tools' name for it
    noun: str  # how its descriptions name the file: "txt", "PDF"...
    data_type: str  # crewai_tools.rag.data_types.DataType's value
    file_option: str  # the option (and argument) naming the file
    query_argument: str = "search_query"


KINDS: dict[str, SearchKind] = {
    "txt_search": SearchKind("Search a txt's content", "txt", "text_file", "txt"),
    "csv_search": SearchKind("Search a CSV's content", "CSV", "csv", "csv"),
    "json_search": SearchKind("Search a JSON's content", "JSON", "json", "json_path"),
    "pdf_search": SearchKind("Search a PDF's content", "PDF", "pdf_file", "pdf", "query"),
    "docx_search": SearchKind("Search a DOCX's content", "DOCX", "docx", "docx"),
    "mdx_search": SearchKind("Search a MDX's content", "MDX", "mdx", "mdx"),
    "directory_search": SearchKind("Search a directory's content", "directory", "directory",
                                   "directory"),
}
BY_SUFFIX = {".pdf": "pdf_file", ".csv": "csv", ".json": "json", ".docx": "docx",
             ".mdx": "mdx", ".md": "mdx"}  # any other file of a directory: text


def chunks_of(path: Path, data_type: str) -> tuple[str, ...]:
    """The file's chunks as crewai-tools loads and chunks a file of that kind."""
    from crewai_tools.rag.data_types import DataType
    from crewai_tools.rag.source_content import SourceContent

    kind = DataType(data_type)
    text = kind.get_loader().load(SourceContent(str(path))).content
    if len(text) > MAX_TEXT_CHARS:
        raise WorkspaceError(f"{path.name} has {len(text):,} characters; a search tool reads "
                             f"at most {MAX_TEXT_CHARS:,}")
    return tuple(c for c in kind.get_chunker().chunk(text) if c.strip())


class WorkspaceSearchTool(BaseTool):
    """One of crewai-tools' RAG search tools, over the workspace (see the module)."""

    _kind: SearchKind = PrivateAttr()
    _workspace: Workspace = PrivateAttr()
    _hooks: RunHooks = PrivateAttr()
    _path: str | None = PrivateAttr(default=None)

    def _run(self, **kwargs: Any) -> str | ToolFailure:
        kind = self._kind
        query = str(kwargs.get(kind.query_argument) or "").strip()
        path = self._path or kwargs.get(kind.file_option)
        if not query:
            return ToolFailure(message=f"Error: give {kind.query_argument}, what to look for")
        if not path:
            return ToolFailure(message=f"Error: give {kind.file_option}, the {kind.noun} to "
                                       "search")
        skipped: list[str] = []
        try:
            documents = self._documents(str(path), skipped)
        except Exception as error:  # what the tool cannot read: the agent is told, the call
            message = f"Error: {error}"  # is recorded as failed, no server path in either
            return ToolFailure(message=message.replace(str(self._workspace.root) + "/", "")
                               .replace(str(self._workspace.root), "."))
        found = self._hooks.search_documents(documents, query, RESULTS)
        note = f"\n\n(not searched, unreadable: {', '.join(skipped)})" if skipped else ""
        if not found:
            return "Relevant Content:\nNo relevant content found." + note
        return "Relevant Content:\n" + "\n\n".join(dict.fromkeys(found)) + note

    def _documents(self, path: str, skipped: list[str]) -> list[Document]:
        """The documents to search; a directory's files that cannot be read as their kind
        (an image, an archive) are named in ``skipped`` instead of failing the call."""
        real = self._workspace.resolve(path, must_exist=True)
        if self._kind.data_type != "directory":
            if not real.is_file():
                raise WorkspaceError(f"{path!r} is not a file")
            return [self._document(real, self._kind.data_type)]
        if not real.is_dir():
            raise WorkspaceError(f"{path!r} is not a directory")
        root = self._workspace.root
        files = sorted(f for f in real.rglob("*") if f.is_file()
                       and not any(p.startswith(".") for p in f.relative_to(root).parts)
                       and f.resolve().is_relative_to(root))  # no .git/, no symlink out
        if len(files) > MAX_FILES:
            raise WorkspaceError(f"{path!r} holds {len(files)} files; a directory search reads "
                                 f"at most {MAX_FILES}")
        documents, total = [], 0
        for file in files:
            try:
                document = self._document(file, BY_SUFFIX.get(file.suffix.lower(), "text_file"))
            except Exception:  # crewai-tools' DirectoryLoader skips such files too
                skipped.append(self._workspace.relative(file))
                continue
            total += sum(map(len, document.chunks))
            if total > MAX_TOTAL_CHARS:
                raise WorkspaceError(f"{path!r} holds more than {MAX_TOTAL_CHARS:,} characters: "
                                     "search a smaller folder or single files")
            documents.append(document)
        return documents

    def _document(self, real: Path, data_type: str) -> Document:
        chunks = chunks_of(real, data_type)
        key = hashlib.sha256("\x00".join((data_type, *chunks)).encode()).hexdigest()
        return Document(key, self._workspace.relative(real), chunks)


def search_tool(name: str, workspace: Workspace, hooks: RunHooks | None,
                path: str | None = None) -> BaseTool:
    """Kasal's ``name`` (``KINDS``), configured with ``path`` in the workspace or not."""
    if hooks is None:
        raise ValueError(f"tool {name!r} searches through a run's vector index: build it for "
                         "a run")
    kind = KINDS[name]
    fields: dict[str, Any] = {kind.query_argument: (str, Field(
        description=f"Mandatory search query you want to use to search the {kind.noun}'s "
                    "content"))}
    if path is None:
        fields[kind.file_option] = (str, Field(
            description=f"Mandatory path of the {kind.noun} to search, in the workspace"))
        description = ("A tool that can be used to semantic search a query from a "
                       f"{kind.noun}'s content.")
    else:
        workspace.resolve(path)  # a configured path outside the workspace: refused here
        description = (f"A tool that can be used to semantic search a query the {path} "
                       f"{kind.noun}'s content.")
    schema: type[BaseModel] = create_model(f"{name.title().replace('_', '')}Schema", **fields)
    tool = WorkspaceSearchTool(name=kind.tool_name, description=description, args_schema=schema)
    tool._kind, tool._workspace, tool._hooks, tool._path = kind, workspace, hooks, path
    return tool
