"""Embedding models: the ``projections.vectors.Embedder`` port.

- ``WordLlamaEmbedder``: the default, "wordllama/l2_supercat_256" (256 dimensions), whose
  weights and tokenizer ship inside the ``wordllama`` package. It loads fully offline, on the
  first ``embed``, and never downloads anything. The model is trained "Matryoshka" style, so
  its first 128 or 64 dimensions are models too: "wordllama/l2_supercat_128" and "_64"
  truncate the shipped weights (512 and 1024 are not shipped, hence refused).
- ``LiteLLMEmbedder``: any provider model through ``litellm.embedding`` (credentials from the
  environment, as for completions).

``build_embedder`` picks one from the configured model name.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from projections.vectors import Embedder

WORDLLAMA_MODEL = "wordllama/l2_supercat_256"
WORDLLAMA_DIMENSIONS = (64, 128, 256)  # the shipped 256, and its truncations
_WORDLLAMA_CONFIG = "l2_supercat"
_WORDLLAMA_SHIPPED = 256
_WORDLLAMA_NAME = re.compile(r"wordllama(?:/l2_supercat_(\d+))?")


class _Inference(Protocol):
    """What is used of ``wordllama.inference.WordLlamaInference`` (wordllama has no types)."""

    embedding: Any  # numpy array (vocabulary, dimension)

    def embed(self, texts: list[str], norm: bool, return_np: bool) -> Any: ...


def _import_wordllama() -> Any:
    """Import ``wordllama`` without letting it configure logging for the whole process:
    its ``inference`` module calls ``logging.basicConfig(level=logging.INFO)`` at import,
    which adds a stderr handler to the root logger and lowers its level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        wordllama = importlib.import_module("wordllama")
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return wordllama


def _provide_tokenizer(package_dir: Path, cache_dir: Path, filename: str) -> None:
    """wordllama 0.4.0 looks for its tokenizer in ``<package>/tokenizer/`` but ships it in
    ``<package>/tokenizers/``; it then looks in ``<cache_dir>/tokenizers/`` (and would
    download it otherwise). Put the shipped file where the second lookup finds it."""
    target = cache_dir / "tokenizers" / filename
    if target.exists():
        return
    source = package_dir / "tokenizers" / filename
    if not source.exists():
        raise FileNotFoundError(f"wordllama's tokenizer is not in its package: {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # copy then rename: another process never sees a half-written file
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{filename}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class WordLlamaEmbedder:
    """wordllama's l2_supercat model, from the files in its package: 256 dimensions, or
    their first 128 or 64.

    Vectors are the plain mean of token embeddings (not normalized: the index uses cosine).
    A text without any token (the empty string) gets the zero vector."""

    def __init__(self, cache_dir: Path, dimension: int = _WORDLLAMA_SHIPPED) -> None:
        if dimension not in WORDLLAMA_DIMENSIONS:
            raise ValueError(
                f"wordllama l2_supercat ships {_WORDLLAMA_SHIPPED} dimensions, usable whole or "
                f"truncated to {WORDLLAMA_DIMENSIONS}; {dimension} would need a download"
            )
        self.model = f"wordllama/{_WORDLLAMA_CONFIG}_{dimension}"
        self.dimension = dimension
        self._cache_dir = Path(cache_dir)
        self._lock = threading.Lock()
        self._inference: _Inference | None = None

    def _load(self) -> _Inference:
        inference = self._inference
        if inference is not None:
            return inference
        with self._lock:
            if self._inference is None:
                wordllama = _import_wordllama()
                uri = importlib.import_module("wordllama.config").WordLlamaModels.l2_supercat
                _provide_tokenizer(
                    Path(wordllama.__file__).parent, self._cache_dir, uri.tokenizer_config
                )
                loaded: _Inference = wordllama.WordLlama.load(
                    config=_WORDLLAMA_CONFIG,
                    dim=_WORDLLAMA_SHIPPED,
                    trunc_dim=None if self.dimension == _WORDLLAMA_SHIPPED else self.dimension,
                    cache_dir=self._cache_dir,
                    disable_download=True,
                )
                if loaded.embedding.shape[1] != self.dimension:
                    raise RuntimeError(
                        f"wordllama loaded {loaded.embedding.shape[1]} dimensions, "
                        f"expected {self.dimension}"
                    )
                self._inference = loaded
            return self._inference

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().embed(list(texts), norm=False, return_np=True)
        plain: list[list[float]] = vectors.tolist()  # float32 array -> Python floats
        return plain


class LiteLLMEmbedder:
    """A provider's embedding model through ``litellm.embedding``.

    ``options`` go to every call (e.g. ``api_base``, ``api_key``; litellm reads provider
    credentials from the environment otherwise). Without ``dimension``, the first response
    tells it; reading ``dimension`` before any ``embed`` makes one probe call."""

    _PROBE = "dimension probe"

    def __init__(
        self,
        model: str,
        dimension: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._dimension = dimension
        self._options = dict(options or {})
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed([self._PROBE])
        assert self._dimension is not None
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self._dimension = value

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        import litellm

        response = litellm.embedding(model=self.model, input=list(texts), **self._options)
        items = sorted(response.data, key=lambda item: int(item.get("index") or 0))
        if len(items) != len(texts):
            raise ValueError(
                f"{self.model} returned {len(items)} embeddings for {len(texts)} texts"
            )
        vectors: list[list[float]] = []
        for item in items:
            raw = item["embedding"]
            if not isinstance(raw, list):
                raise ValueError(f"{self.model} returned a non-list embedding: {type(raw)}")
            vectors.append([float(x) for x in raw])
        with self._lock:
            if self._dimension is None:
                self._dimension = len(vectors[0])
            expected = self._dimension
        for vector in vectors:
            if len(vector) != expected:
                raise ValueError(
                    f"{self.model} returned a vector of {len(vector)} dimensions, "
                    f"expected {expected}"
                )
        return vectors


def build_embedder(model: str, cache_dir: Path) -> Embedder:
    """The packaged WordLlama model for "wordllama" (256 dimensions) or
    "wordllama/l2_supercat_<64|128|256>"; anything else is a litellm model name (e.g.
    "openai/text-embedding-3-small")."""
    match = _WORDLLAMA_NAME.fullmatch(model)
    if match:
        return WordLlamaEmbedder(cache_dir, int(match.group(1) or _WORDLLAMA_SHIPPED))
    return LiteLLMEmbedder(model)
