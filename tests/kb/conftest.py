"""One embedding model per test session: loading it takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.index import Embedder

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


def write_article(directory: Path, id: str, title: str, body: str,
                  question: str = "placeholder question") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{id}.md"
    path.write_text(ARTICLE.format(id=id, title=title, body=body, question=question))
    return path
