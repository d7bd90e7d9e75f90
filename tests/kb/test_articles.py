"""Article files: what is accepted, and how each mistake is reported (file and line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.articles import ArticleError, body_sentences, load_articles, parse_article
from bot.settings import PROJECT_DIR
from tests.kb.conftest import write_article


def test_the_shipped_knowledge_base_is_valid_and_covers_the_shop() -> None:
    articles = load_articles(PROJECT_DIR / "data" / "kb")
    assert len(articles) >= 25
    ids = {a.id for a in articles}
    for topic in ("shipping-costs", "international-shipping", "returns-policy", "damaged-items",
                  "refunds", "exchanges", "payment-methods", "gift-cards", "discount-codes",
                  "warranty", "sizing-clothing", "account-help", "stores", "opening-hours",
                  "privacy"):
        assert topic in ids
    assert all(a.body and a.title and a.url and a.url.startswith("https://") for a in articles)


def test_an_article_has_title_questions_and_body_passages(tmp_path: Path) -> None:
    path = write_article(tmp_path, "gift-wrap", "Gift wrapping", "We wrap gifts.\n\nFor €3.",
                         question="Can you wrap my present?")
    article = parse_article(path)
    assert article.id == "gift-wrap" and article.questions == ("Can you wrap my present?",)
    passages = article.passages()
    assert [kind for kind, _ in passages] == ["title", "question", "body", "sentence",
                                              "sentence"]
    # A sentence alone ("For €3.") loses its topic: it is embedded behind the title.
    assert passages[-1][1] == "Gift wrapping: For €3."


def test_sentences_split_at_full_stops_and_list_items() -> None:
    body = ("Return within 30 days. Members get 60.\n\n"
            "We cannot take back:\n- gas canisters;\n- socks")
    assert body_sentences(body) == ["Return within 30 days.", "Members get 60.",
                                    "We cannot take back:", "gas canisters;", "socks"]


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "a.md").write_text(text)
    with pytest.raises(ArticleError) as error:
        load_articles(tmp_path)
    return [str(p) for p in error.value.problems]


def test_bad_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "---\nid: a\ntitle: [unclosed\n---\nBody.\n")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'a.md'}:")
    assert "bad YAML" in problems[0]
    assert int(problems[0].split(":")[1]) in (3, 4)


def test_missing_id_names_the_field(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "---\ntitle: No id\n---\nBody.\n")
    assert problems == [f"{tmp_path / 'a.md'}:2: 'id': missing"]


def test_empty_body_points_below_the_front_matter(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "---\nid: a\ntitle: Empty\n---\n\n   \n")
    assert problems == [f"{tmp_path / 'a.md'}:5: empty body: write the answer below the "
                        "front matter"]


def test_no_front_matter_and_bad_ids_are_refused(tmp_path: Path) -> None:
    assert "no front matter" in _problems(tmp_path, "Just text.\n")[0]
    assert "'id'" in _problems(tmp_path, "---\nid: Not A Slug\ntitle: T\n---\nBody\n")[0]


def test_duplicate_ids_name_both_files_and_every_problem_is_listed(tmp_path: Path) -> None:
    write_article(tmp_path, "same", "One", "Body one.")
    (tmp_path / "copy.md").write_text("---\nid: same\ntitle: Two\n---\nBody two.\n")
    (tmp_path / "broken.md").write_text("---\ntitle: no id\n---\nx\n")
    with pytest.raises(ArticleError) as error:
        load_articles(tmp_path)
    text = str(error.value)
    assert "same.md:2: duplicate id 'same' (also in" in text and "copy.md)" in text
    assert "broken.md:2: 'id': missing" in text
