"""Knowledge-base articles: one Markdown file each, YAML front matter, body = answer.

Parsing is strict at the edge: a file with bad YAML, a missing or duplicate id
or an empty body is reported with its file and line, and the whole set is
refused (``shopchat kb build`` fails). The running bot never reads files: it
loads the index that a successful build wrote.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

__all__ = [
    "DRAFT_MARKER", "Article", "ArticleError", "Problem", "body_sentences", "load_articles",
    "parse_article",
]

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
#: The first words of a scaffolded article's body (``shopchat kb new``) until staff write it.
DRAFT_MARKER = "DRAFT: write the answer shoppers will read"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, where a person can find it."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ArticleError(Exception):
    """The articles cannot be used; ``problems`` lists every file and line to fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, max_length=80)
    title: str = Field(min_length=1, max_length=200)
    url: str | None = Field(None, pattern=r"^https?://", max_length=2048)
    tags: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)

    @field_validator("questions", "tags")
    @classmethod
    def _no_blanks(cls, values: list[str]) -> list[str]:
        if any(not str(v).strip() for v in values):
            raise ValueError("entries must not be blank")
        return [str(v).strip() for v in values]


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    url: str | None
    tags: tuple[str, ...]
    questions: tuple[str, ...]
    body: str
    path: Path

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that is embedded changes."""
        text = "\n".join([self.title, *self.questions, self.body])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def passages(self, max_chars: int = 600) -> list[tuple[str, str]]:
        """What gets embedded: the title, each question, the body in paragraph chunks,
        and each sentence of the body behind the title.

        A shopper's question usually matches one sentence of an answer; alone, a
        sentence loses what it is about ("They are free."), hence the title in front.
        On the calibration queries the sentences raised hit@1 from 0.935 to 0.954
        (with the lexical match; see ``bench/kb_fusion.py``).
        """
        found = [("title", self.title)] + [("question", q) for q in self.questions]
        chunk = ""
        for paragraph in re.split(r"\n\s*\n", self.body):
            paragraph = " ".join(paragraph.split())
            if chunk and len(chunk) + len(paragraph) > max_chars:
                found.append(("body", chunk))
                chunk = ""
            chunk = f"{chunk} {paragraph}".strip()
        if chunk:
            found.append(("body", chunk))
        found += [("sentence", f"{self.title}: {s}") for s in body_sentences(self.body)]
        return found


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z\-])|\s+-\s+")


def body_sentences(body: str) -> list[str]:
    """The body's sentences and list items, whitespace collapsed."""
    found = []
    for paragraph in re.split(r"\n\s*\n", body):
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            sentence = sentence.strip(" -")
            if len(sentence) > 3:
                found.append(sentence)
    return found


_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)


def parse_article(path: Path) -> Article:
    """Read one article, or raise :class:`ArticleError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ArticleError([Problem(path, 1, f"cannot read: {error}")]) from None
    fences = list(_FENCE.finditer(text))
    if not text.startswith("---") or len(fences) < 2:
        raise ArticleError([Problem(
            path, 1, "no front matter: start the file with '---', the YAML fields, and '---'"
        )])
    front = text[fences[0].end():fences[1].start()]
    body = text[fences[1].end():].strip()
    body_line = text[:fences[1].end()].count("\n") + 2
    try:
        raw: Any = YAML(typ="safe").load(front)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        # The front matter string starts on the file's first line, right after '---'.
        line = (mark.line + 1) if mark is not None else 2
        raise ArticleError([Problem(path, line, f"bad YAML: {error.problem}")]) from None
    except YAMLError as error:
        raise ArticleError([Problem(path, 2, f"bad YAML: {error}")]) from None
    if not isinstance(raw, dict):
        raise ArticleError([Problem(path, 2, "front matter must be YAML fields (key: value)")])
    try:
        meta = FrontMatter.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "front matter"
            line = _field_line(text, field)
            what = "missing" if item["type"] == "missing" else item["msg"]
            problems.append(Problem(path, line, f"'{field}': {what}"))
        raise ArticleError(problems) from None
    if not body:
        raise ArticleError([Problem(path, body_line, "empty body: write the answer below the "
                                                      "front matter")])
    if body.startswith(DRAFT_MARKER):
        raise ArticleError([Problem(path, body_line, "still a draft: replace the DRAFT line "
                                                      "with the answer")])
    return Article(meta.id, meta.title, meta.url, tuple(meta.tags), tuple(meta.questions),
                   body, path)


def _field_line(text: str, field: str) -> int:
    """The line of a front-matter field (line 2, the first field, when it is missing)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(f"{field}:"):
            return number
    return 2


def load_articles(paths: Iterable[Path] | Path) -> list[Article]:
    """Every article under a directory (``*.md``) or in a list of files.

    Collects all problems before failing, so one run shows everything to fix.
    """
    files = sorted(paths.glob("*.md")) if isinstance(paths, Path) else sorted(paths)
    articles: list[Article] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            article = parse_article(path)
        except ArticleError as error:
            problems += error.problems
            continue
        if article.id in seen:
            line = _field_line(path.read_text(encoding="utf-8"), "id")
            problems.append(Problem(path, line, f"duplicate id '{article.id}' "
                                                f"(also in {seen[article.id]})"))
            continue
        seen[article.id] = path
        articles.append(article)
    if problems:
        raise ArticleError(problems)
    return articles
