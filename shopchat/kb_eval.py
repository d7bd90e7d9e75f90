"""``shopchat kb build|search`` and ``shopchat eval kb``: the knowledge base for staff.

``eval kb`` builds a throwaway index for a directory of articles and scores a
CSV of questions (header ``query,article_id``): hit@1, hit@3, MRR and the
retrieval latency (embed the query + dense and lexical search + fusion) per
query. Rows with an empty
``article_id`` are off-topic questions that no article should answer; they
measure how often the bot would wrongly answer at the current thresholds.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.kb.answer import Thresholds, decide
from bot.kb.articles import ArticleError, load_articles
from bot.kb.index import MODEL_NAME, BuildReport, Embedder, Index, build_index
from bot.kb.lexical import TOKENIZER
from shopchat.exceptions import ShopchatError

__all__ = ["Query", "build", "evaluate_kb", "read_queries"]


@dataclass(frozen=True)
class Query:
    text: str
    article_id: str | None  # None: no article should answer


def read_queries(path: Path, known: set[str]) -> list[Query]:
    if not path.is_file():
        raise ShopchatError(f"{path}: no such file.")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"query", "article_id"} - set(reader.fieldnames or [])
        if missing:
            raise ShopchatError(f"{path}: the header must be query,article_id (missing: "
                                f"{', '.join(sorted(missing))}).")
        queries = []
        for line, row in enumerate(reader, start=2):
            text = (row["query"] or "").strip()
            article = (row["article_id"] or "").strip() or None
            if not text:
                raise ShopchatError(f"{path}:{line}: empty query.")
            if article is not None and article not in known:
                raise ShopchatError(f"{path}:{line}: no article with id {article!r}.")
            queries.append(Query(text, article))
    if not any(q.article_id for q in queries):
        raise ShopchatError(f"{path}: no queries with an article_id to score.")
    return queries


def _articles(directory: Path) -> list[Any]:
    if not directory.is_dir():
        raise ShopchatError(f"{directory}: no such directory.")
    try:
        articles = load_articles(directory)
    except ArticleError as error:
        raise ShopchatError("invalid articles:\n" + str(error)) from error
    if not articles:
        raise ShopchatError(f"{directory}: no articles (*.md).")
    return articles


def build(directory: Path, index_dir: Path, embedder: Embedder | None = None,
          progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Validate every article, then (re)build the index incrementally."""
    articles = _articles(directory)
    return build_index(articles, index_dir, embedder or Embedder, progress)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate_kb(articles_dir: Path, queries_path: Path, embedder: Embedder | None = None,
                thresholds: Thresholds | None = None) -> dict[str, Any]:
    """Scores of a fresh index for ``articles_dir`` on the questions in ``queries_path``."""
    thresholds = thresholds or Thresholds()
    articles = _articles(articles_dir)
    queries = read_queries(queries_path, {a.id for a in articles})
    embedder = embedder or Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        build_index(articles, Path(tmp), embedder)
        index = Index.load(Path(tmp))
        embedder.encode(["warm up"])
        results: list[dict[str, Any]] = []
        latencies = []
        for query in queries:
            started = time.perf_counter()
            matches = index.search(embedder.encode([query.text])[0], k=10, text=query.text)
            latencies.append((time.perf_counter() - started) * 1000)
            ranked = [m.article_id for m in matches]
            decision = decide(matches, thresholds)
            results.append({
                "query": query.text, "expected": query.article_id, "ranked": ranked[:3],
                "scores": [m.score for m in matches[:3]],
                "dense": [m.dense for m in matches[:3]],
                "lexical": [m.lexical for m in matches[:3]], "decision": decision.kind,
                "decided": [m.article_id for m in decision.matches],
                "rank": ranked.index(query.article_id) + 1
                if query.article_id in ranked else None,
            })
    positives = [r for r in results if r["expected"]]
    negatives = [r for r in results if not r["expected"]]
    n = len(positives)
    hit1 = sum(r["rank"] == 1 for r in positives) / n
    hit3 = sum(r["rank"] is not None and r["rank"] <= 3 for r in positives) / n
    mrr = sum(1.0 / r["rank"] for r in positives if r["rank"]) / n
    answered_right = sum(r["decision"] == "answer" and r["decided"] == [r["expected"]]
                         for r in positives)
    offered = sum(r["decision"] == "choose" and r["expected"] in r["decided"]
                  for r in positives)
    report: dict[str, Any] = {
        "articles": len(articles),
        "n": n,
        "hit@1": round(hit1, 4),
        "hit@3": round(hit3, 4),
        "mrr": round(mrr, 4),
        "latency_ms": {"p50": round(statistics.median(latencies), 2),
                       "p95": round(_percentile(latencies, 0.95), 2)},
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(_percentile(latencies, 0.95), 2),
        "thresholds": {"answer": thresholds.answer, "margin": thresholds.margin,
                       "fallback": thresholds.fallback},
        "retrieval": {"dense": MODEL_NAME, "lexical": f"sqlite fts5 bm25 ({TOKENIZER})",
                      "fusion": {"weight": index.fusion.weight, "cap": index.fusion.cap}},
        "decisions": {
            "answered_correctly": round(answered_right / n, 4),
            "offered_choice_with_right_article": round(offered / n, 4),
            "said_no_answer": round(sum(r["decision"] == "none" for r in positives) / n, 4),
        },
        "errors": [r for r in positives if r["rank"] != 1],
    }
    if negatives:
        report["off_topic"] = {
            "n": len(negatives),
            "correctly_unanswered": round(
                sum(r["decision"] == "none" for r in negatives) / len(negatives), 4),
            "wrongly_answered": [r for r in negatives if r["decision"] != "none"],
        }
    return report
