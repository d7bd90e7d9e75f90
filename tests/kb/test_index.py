"""The index: incremental rebuilds, search, and a running retriever picking up a rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.articles import load_articles
from bot.kb.index import Embedder, Index, IndexMissing, Retriever, build_index
from tests.kb.conftest import write_article


class CountingEmbedder:
    """The real embedder, counting how many texts it was asked to embed."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.texts = 0

    def __call__(self) -> Embedder:
        return self.real

    def encode(self, texts: list[str], *args: object, **kwargs: object) -> object:
        self.texts += len(texts)
        return self.real.encode(texts)


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "kb"
    write_article(directory, "shipping", "Shipping costs",
                  "Delivery costs €4.95 and is free over €75.", "How much is postage?")
    write_article(directory, "returns", "Returns policy",
                  "Return unused items within 30 days for a refund.", "Can I send it back?")
    return directory


def test_rebuild_embeds_only_what_changed(articles_dir: Path, tmp_path: Path,
                                          embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    first = build_index(load_articles(articles_dir), index_dir, embedder)
    assert sorted(first.embedded) == ["returns", "shipping"] and first.vectors == 6

    write_article(articles_dir, "returns", "Returns policy",
                  "Return unused items within 60 days.", "Can I send it back?")
    write_article(articles_dir, "gift-cards", "Gift cards", "Gift cards from €10 to €500.")
    (articles_dir / "shipping.md").unlink()
    second = build_index(load_articles(articles_dir), index_dir, lambda: embedder)
    assert sorted(second.embedded) == ["gift-cards", "returns"]
    assert second.removed == ["shipping"] and second.reused == []

    third = build_index(load_articles(articles_dir), index_dir,
                        lambda: pytest.fail("nothing changed: the model must not be loaded"))
    assert third.embedded == [] and sorted(third.reused) == ["gift-cards", "returns"]
    assert third.version == second.version
    index = Index.load(index_dir)
    assert sorted(index.articles) == ["gift-cards", "returns"]
    assert "60 days" in index.articles["returns"]["body"]


def test_search_ranks_the_right_article_first(articles_dir: Path, tmp_path: Path,
                                              embedder: Embedder) -> None:
    build_index(load_articles(articles_dir), tmp_path / "index", embedder)
    retriever = Retriever(tmp_path / "index", embedder)
    best = retriever.search("what does delivery cost?", k=2)
    assert [m.article_id for m in best] == ["shipping", "returns"]
    assert best[0].score > best[1].score


def test_a_running_retriever_picks_up_a_rebuilt_index(articles_dir: Path, tmp_path: Path,
                                                      embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    retriever = Retriever(index_dir, embedder)
    with pytest.raises(IndexMissing, match="shopchat kb build"):
        retriever.search("anything")
    build_index(load_articles(articles_dir), index_dir, embedder)
    assert retriever.search("do you sell gift vouchers?")[0].article_id != "gift-cards"
    write_article(articles_dir, "gift-cards", "Gift cards",
                  "Gift cards from €10 to €500, valid for three years.", "Do you sell vouchers?")
    build_index(load_articles(articles_dir), index_dir, embedder)
    assert retriever.search("do you sell gift vouchers?")[0].article_id == "gift-cards"
