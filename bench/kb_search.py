"""Benchmark: knowledge-base retrieval (embed the question + search) on a 1,000-article KB.

The KB is the shop's real articles plus generated ones (product care, sizing,
warranty and spec pages for made-up products) up to ``--articles``; it is
embedded once, like ``shopchat kb build``. The questions are the held-out
set's. Measured in the same run, one question at a time:

- ``embed+search``: what the bot does per FAQ question (MiniLM on the CPU, then FAISS);
- ``embed``: the query embedding alone (the model's share);
- ``faiss search``: the index lookup alone;
- ``numpy brute force``: the same lookup as a plain matrix product (the baseline FAISS
  is compared with).

Prints a table and writes ``bench/results/kb_search.json``. Not a test.

    .venv/bin/python bench/kb_search.py [--articles 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bot.kb.articles import Article, load_articles
from bot.kb.index import Embedder, Index, build_index
from bot.settings import PROJECT_DIR

RESULTS = PROJECT_DIR / "bench" / "results" / "kb_search.json"
QUERIES = PROJECT_DIR / "tests" / "kb" / "heldout_queries.csv"

PRODUCTS = ["Ridgeline tent", "Alpine sleeping bag", "Stormline jacket", "Trailrunner boot",
            "Summit backpack", "Peak stove", "Fjord fleece", "Canyon shorts", "Glacier gloves",
            "Harbor kayak", "Cirrus down vest", "Tundra base layer", "Boulder chalk bag",
            "Meadow hammock", "Drift dry bag", "Ember headlamp", "Quarry climbing harness",
            "Pinecone camp chair", "Basin water filter", "Talus trekking poles"]
TOPICS = [
    ("care", "How to care for the {p}",
     "Clean the {p} with lukewarm water after every {n} uses and let it dry fully before "
     "storing. Avoid detergents with bleach; re-treat the surface once a season."),
    ("sizing", "{p} sizes and fit",
     "The {p} comes in {n} sizes. Measure yourself and compare with the chart on the product "
     "page; between sizes, take the larger one if you layer underneath."),
    ("warranty", "{p} warranty",
     "The {p} has a {n}-year warranty against manufacturing defects. Wear and tear and "
     "accidental damage are not covered; send photos and your order number to claim."),
    ("specs", "{p} technical specifications",
     "The {p} weighs {n}00 g and is made from recycled nylon with a PFC-free water-repellent "
     "finish. It is tested in our lab for abrasion and seam strength."),
    ("parts", "Spare parts for the {p}",
     "Replacement buckles, straps and zip pullers for the {p} cost €{n} and ship free with "
     "any order. Our stores fit them while you wait."),
]


def synthetic_articles(real: list[Article], total: int) -> list[Article]:
    made = list(real)
    for n, (product, (kind, title, body)) in enumerate(
        itertools.cycle(itertools.product(PRODUCTS, TOPICS))
    ):
        if len(made) >= total:
            break
        variant = n // (len(PRODUCTS) * len(TOPICS))
        name = f"{product} {variant + 1}" if variant else product
        made.append(Article(
            id=f"gen-{kind}-{n}", title=title.format(p=name), url=None, tags=(kind,),
            questions=(f"{kind} question about the {name}",),
            body=body.format(p=name, n=2 + n % 7), path=Path(f"gen-{n}.md"),
        ))
    return made


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    embedder = Embedder()
    articles = synthetic_articles(load_articles(PROJECT_DIR / "data" / "kb"), args.articles)
    with QUERIES.open(newline="") as handle:
        questions = [row["query"] for row in csv.DictReader(handle)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = build_index(articles, Path(tmp), embedder)
        build_seconds = time.perf_counter() - started
        index = Index.load(Path(tmp))
        matrix = np.load(Path(tmp) / report.version / "vectors.npy")
    for text in questions[:10]:  # warm up
        index.search(embedder.encode([text])[0])

    timings: dict[str, list[float]] = {"embed+search": [], "embed": [], "faiss search": [],
                                       "numpy brute force": []}
    vectors = []
    for _ in range(args.rounds):
        for text in questions:
            t0 = time.perf_counter()
            vector = embedder.encode([text])[0]
            t1 = time.perf_counter()
            index.search(vector, k=3)
            t2 = time.perf_counter()
            timings["embed+search"].append((t2 - t0) * 1000)
            timings["embed"].append((t1 - t0) * 1000)
            timings["faiss search"].append((t2 - t1) * 1000)
            vectors.append(vector)
    # The baseline runs in its own pass: OpenBLAS threads keep spinning for a while
    # after a matrix product and would steal the cores from the next embedding.
    for vector in vectors:
        t3 = time.perf_counter()
        np.argsort(-(matrix @ vector))[:64]
        timings["numpy brute force"].append((time.perf_counter() - t3) * 1000)

    result: dict[str, Any] = {
        "benchmark": "kb_search",
        "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "kb": {"articles": len(articles), "vectors": report.vectors,
               "build_seconds": round(build_seconds, 1)},
        "questions": len(questions) * args.rounds,
        "results": {name: summary(samples) for name, samples in timings.items()},
    }
    table = Table(title=f"KB retrieval, {len(articles)} articles ({report.vectors} vectors), "
                        f"{os.cpu_count()} cores")
    for column in ("step", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, figures in result["results"].items():
        table.add_row(name, str(figures["p50_ms"]), str(figures["p95_ms"]),
                      str(figures["p99_ms"]))
    Console().print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
