"""What ``crew_reader`` puts in place of CrewAI's and crewai-tools' storage before it builds a
project's crew: building one saves its knowledge sources, and builds its RAG tools' indexes,
through chromadb and a hosted embedding model. In the reader's process only, nothing is kept
(Kasal indexes knowledge and workspace files itself)."""

from __future__ import annotations

from typing import Any


def no_knowledge_storage() -> None:
    """A crew with knowledge sources saves them as it is built: into a storage that keeps
    nothing here (CrewAI's default would embed them with a hosted model into chromadb)."""
    from crewai.knowledge.storage.base_knowledge_storage import BaseKnowledgeStorage
    from crewai.knowledge.storage.factory import set_knowledge_storage_factory

    class Nowhere(BaseKnowledgeStorage):
        def search(self, *_: Any, **__: Any) -> list[Any]:
            return []

        async def asearch(self, *_: Any, **__: Any) -> list[Any]:
            return []

        def save(self, documents: list[str]) -> None:
            return None

        async def asave(self, documents: list[str]) -> None:
            return None

        def reset(self) -> None:
            return None

        async def areset(self) -> None:
            return None

    set_knowledge_storage_factory(lambda _embedder, _name: Nowhere())


def no_rag_adapter() -> None:
    """A crewai-tools RAG tool indexes its file as it is built, through chromadb and a
    hosted embedding model (and fails without its key): here, into an adapter that keeps
    nothing (Kasal's search tools index the workspace themselves)."""
    import crewai_tools.adapters.crewai_rag_adapter as rag
    from crewai_tools.tools.rag.rag_tool import Adapter, RagTool

    class Nowhere(Adapter):
        def __init__(self, **_: Any) -> None:
            super().__init__()

        def query(self, question: str, similarity_threshold: float | None = None,
                  limit: int | None = None) -> str:
            return ""

        def add(self, *args: Any, **kwargs: Any) -> None:
            return None

    rag.CrewAIRagAdapter = Nowhere  # type: ignore[misc, assignment]
    # its config names the embedding provider, built before the adapter: none is built here
    RagTool._parse_config = lambda self, config: None  # type: ignore[method-assign]
