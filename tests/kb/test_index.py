"""The index: incremental rebuilds, search by meaning and by words, and a running
retriever picking up a rebuild."""

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
                                          any_embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    first = build_index(load_articles(articles_dir), index_dir, any_embedder)
    # Per article: title, question, body, and the body's one sentence behind the title.
    assert sorted(first.embedded) == ["returns", "shipping"] and first.vectors == 8

    write_article(articles_dir, "returns", "Returns policy",
                  "Return unused items within 60 days.", "Can I send it back?")
    write_article(articles_dir, "gift-cards", "Gift cards", "Gift cards from €10 to €500.")
    (articles_dir / "shipping.md").unlink()
    second = build_index(load_articles(articles_dir), index_dir, lambda: any_embedder)
    assert sorted(second.embedded) == ["gift-cards", "returns"]
    assert second.removed == ["shipping"] and second.reused == []

    third = build_index(load_articles(articles_dir), index_dir,
                        lambda: pytest.fail("nothing changed: the model must not be loaded"))
    assert third.embedded == [] and sorted(third.reused) == ["gift-cards", "returns"]
    assert third.version == second.version
    index = Index.load(index_dir)
    assert sorted(index.articles) == ["gift-cards", "returns"]
    assert "60 days" in index.articles["returns"]["body"]
    # The lexical half followed the same edits: the new wording is in, the old and the
    # deleted article are out.
    assert index.lexical is not None
    assert set(index.lexical.scores("60 days")) == {"returns"}
    assert index.lexical.scores("refund") == {}
    assert index.lexical.scores("postage") == {}


def test_search_ranks_the_right_article_first(articles_dir: Path, tmp_path: Path,
                                              embedder: Embedder) -> None:
    build_index(load_articles(articles_dir), tmp_path / "index", embedder)
    retriever = Retriever(tmp_path / "index", embedder)
    best = retriever.search("what does delivery cost?", k=2)
    assert [m.article_id for m in best] == ["shipping", "returns"]
    assert best[0].score > best[1].score


def test_a_running_retriever_picks_up_a_rebuilt_index(articles_dir: Path, tmp_path: Path,
                                                      any_embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    retriever = Retriever(index_dir, any_embedder)
    with pytest.raises(IndexMissing, match="shopchat kb build"):
        retriever.search("anything")
    build_index(load_articles(articles_dir), index_dir, any_embedder)
    assert retriever.search("do you sell gift vouchers?")[0].article_id != "gift-cards"
    write_article(articles_dir, "gift-cards", "Gift cards",
                  "Gift cards from €10 to €500, valid for three years.", "Do you sell vouchers?")
    build_index(load_articles(articles_dir), index_dir, any_embedder)
    assert retriever.search("do you sell gift vouchers?")[0].article_id == "gift-cards"


def test_a_product_code_only_the_words_match_is_found_first(articles_dir: Path, tmp_path: Path,
                                                             any_embedder: Embedder) -> None:
    write_article(articles_dir, "stove-recall", "Safety notice for one camping stove",
                  "Stoves with batch code QX-7731 can leak at the valve. Stop using them and "
                  "bring them to a store for a free replacement.", "Is my stove affected?")
    write_article(articles_dir, "tent-poles", "Tent poles",
                  "Poles marked QZ-1150 fit the two-person tents.", "Which pole fits my tent?")
    build_index(load_articles(articles_dir), tmp_path / "index", any_embedder)
    best = Retriever(tmp_path / "index", any_embedder).search("QX-7731", k=4)
    assert best[0].article_id == "stove-recall"
    assert best[0].lexical and best[0].lexical > 0 and best[0].score > (best[0].dense or 0)
    # Without the words (the vector alone) the fused bonus is gone.
    index = Retriever(tmp_path / "index", any_embedder).index()
    dense_only = index.search(any_embedder.encode(["QX-7731"])[0], k=4)
    assert {m.lexical for m in dense_only} == {0.0}
    assert all(m.score == m.dense for m in dense_only)


def test_a_version_without_a_lexical_file_still_answers_by_meaning(
    articles_dir: Path, tmp_path: Path, any_embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    report = build_index(load_articles(articles_dir), index_dir, any_embedder)
    (index_dir / report.version / "lexical.db").unlink()
    retriever = Retriever(index_dir, any_embedder)
    assert retriever.index().lexical is None
    assert retriever.search("what does delivery cost?", k=1)[0].article_id == "shipping"
