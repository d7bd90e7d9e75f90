"""One embedding model per test session: loading it takes seconds. And a stand-in for
it, for what the index does whatever the model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.kb.index import DIMENSION, Embedder, Progress

ARTICLE = """---
id: {id}
title: {title}
questions:
  - "{question}"
---
{body}
"""


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


class WordEmbedder(Embedder):
    """A stand-in for MiniLM: each word hashed to one of the model's 384 dimensions, the
    vector made unit length. It matches words, not meanings, and loads in no time
    (MiniLM takes seconds of CPU), for the index's own mechanics: incremental builds,
    versions, the lexical half, a running retriever picking up a build. What depends on
    the model's sense of meaning is tested with the real one (``embedder``)."""

    def __init__(self) -> None:  # no model to load
        self.dimension = DIMENSION

    def encode(self, texts: Sequence[str], progress: Progress | None = None,
               batch_size: int = 64) -> np.ndarray[Any, np.dtype[np.float32]]:
        vectors = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vectors[row, int.from_bytes(digest) % DIMENSION] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


@pytest.fixture(params=["words", pytest.param("minilm", marks=pytest.mark.slow)])
def any_embedder(request: pytest.FixtureRequest) -> Embedder:
    """For what the index does whatever the model: the stand-in in the fast tier, and
    the real MiniLM as well in the whole suite."""
    if request.param == "words":
        return WordEmbedder()
    real: Embedder = request.getfixturevalue("embedder")
    return real


def write_article(directory: Path, id: str, title: str, body: str,
                  question: str = "placeholder question") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{id}.md"
    path.write_text(ARTICLE.format(id=id, title=title, body=body, question=question))
    return path
