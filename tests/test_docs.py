"""The documentation keeps up with the code, and stands on its own.

In the manner of sqlite-utils' ``test_docs.py``: the commands come from the
click app and the settings from the pydantic-settings model, so a command or a
setting added without a word in README.md or docs/ fails here by name. Links
must stay inside the checkout: a reader of the repository has nothing else.
No model, no stack: this runs in ``make check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import click
import pytest
from pydantic.fields import FieldInfo

from bot.settings import PROJECT_DIR, Settings
from shopchat.cli import cli

README = PROJECT_DIR / "README.md"
DOCS_DIR = PROJECT_DIR / "docs"
CLI_REFERENCE = DOCS_DIR / "cli.md"
CONFIGURATION = DOCS_DIR / "configuration.md"
#: Where the product's own code lives (the packages, and Rasa's endpoints.yml in bot/).
SOURCE_DIRS = ("bot", "actions", "handoff", "shopchat")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


@cache
def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def all_docs() -> str:
    return "\n".join(read(path) for path in doc_files())


def mentions(text: str, name: str) -> bool:
    """``name`` as a whole token: `shopchat kb` is not `shopchat kbx`, SHOPCHAT_MODEL
    is not SHOPCHAT_MODELS_DIR."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


# -- what the code offers -------------------------------------------------------------


def walk(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)


COMMANDS: dict[str, click.Command] = dict(walk(cli, "shopchat"))
LEAF_COMMANDS = {path: c for path, c in COMMANDS.items() if not isinstance(c, click.Group)}


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads for a field."""
    config = Settings.model_config
    alias = field.validation_alias
    variable = alias if isinstance(alias, str) else f"{config.get('env_prefix', '')}{name}"
    return variable if config.get("case_sensitive") else variable.upper()


SETTINGS: dict[str, tuple[str, FieldInfo]] = {
    env_name(name, field): (name, field) for name, field in Settings.model_fields.items()
}


def variables_in_code() -> set[str]:
    """SHOPCHAT_* names the product's code reads or sets outside the settings model
    (the config file's location, what `shopchat up` hands to Rasa)."""
    found: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in sorted((PROJECT_DIR / folder).rglob("*")):
            if path.suffix in {".py", ".yml"}:
                found |= set(re.findall(r"\bSHOPCHAT_[A-Z0-9_]+", path.read_text("utf-8")))
    return found


OTHER_VARIABLES = sorted(variables_in_code() - set(SETTINGS))


def documented_default(field: FieldInfo) -> str:
    """How docs/configuration.md writes a default: as one would type it in shopchat.toml."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == PROJECT_DIR:
        return "the checkout"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, list) and not value:
        return "`[]`"
    return f"`{value}`"


# -- commands -------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_is_documented(command: str) -> None:
    assert mentions(all_docs(), command), f"`{command}` is in shopchat/cli.py but not in " \
        "README.md or docs/*.md; describe it in docs/cli.md"


def reference_section(command: str) -> str | None:
    """The body of the ``### `shopchat …``` section of docs/cli.md, if there is one."""
    sections = re.split(r"^(#{1,3} .*)$", read(CLI_REFERENCE), flags=re.MULTILINE)
    for heading, body in zip(sections[1::2], sections[2::2], strict=True):
        if heading.startswith("### ") and heading[4:].strip() == f"`{command}`":
            return body
    return None


@pytest.mark.parametrize("command", sorted(LEAF_COMMANDS))
def test_every_option_is_in_the_command_reference(command: str) -> None:
    section = reference_section(command)
    assert section is not None, f"docs/cli.md has no section ### `{command}`"
    missing = [
        option.opts[0]
        for option in LEAF_COMMANDS[command].params
        if isinstance(option, click.Option) and not option.hidden
        and not any(mentions(section, flag) for flag in option.opts)
    ]
    assert not missing, f"docs/cli.md, `{command}`: options not described: {missing}"


# -- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("variable", sorted(SETTINGS))
def test_setting_is_documented(variable: str) -> None:
    assert mentions(all_docs(), variable), f"{variable} ({SETTINGS[variable][0]} in " \
        "bot/settings.py) is not in README.md or docs/*.md; add it to docs/configuration.md"


def settings_table() -> dict[str, list[str]]:
    """Rows of docs/configuration.md's tables, by the variable in their first cell."""
    rows: dict[str, list[str]] = {}
    for line in read(CONFIGURATION).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `SHOPCHAT_") and len(cells) >= 2:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


@pytest.mark.parametrize("variable", sorted(SETTINGS))
def test_setting_has_a_row_with_its_default(variable: str) -> None:
    row = settings_table().get(variable)
    assert row is not None, f"docs/configuration.md has no row for {variable}"
    name, field = SETTINGS[variable]
    assert row[0] == documented_default(field), (
        f"docs/configuration.md gives {variable} the default {row[0]!r}; bot/settings.py "
        f"says {name} = {documented_default(field)!r}")
    assert len(row) >= 2 and row[1], f"docs/configuration.md: {variable} needs a meaning"


@pytest.mark.parametrize("variable", OTHER_VARIABLES)
def test_variable_the_code_reads_is_documented(variable: str) -> None:
    assert variable in settings_table(), (
        f"{variable} is used in the code but is not a setting; explain it under "
        "'Other variables' in docs/configuration.md")


def test_documented_variables_exist() -> None:
    known = set(SETTINGS) | set(OTHER_VARIABLES)
    stale = sorted(set(re.findall(r"\bSHOPCHAT_[A-Z0-9_]+", all_docs())) - known)
    assert not stale, f"documented but neither a setting nor used by the code: {stale}"


# -- the layout -----------------------------------------------------------------------


def modules() -> list[str]:
    """Every module of the product's packages and the benchmarks, as `package/file.py`."""
    return sorted(
        str(path.relative_to(PROJECT_DIR))
        for folder in (*SOURCE_DIRS, "bench")
        for path in (PROJECT_DIR / folder).rglob("*.py")
        if path.name != "__init__.py"
    )


def where_things_live() -> list[tuple[str, str]]:
    """(path cell, what cell) of each row of the README's "Where things live" table."""
    section = read(README).split("## Where things live", 1)[1].split("\n## ", 1)[0]
    return [(cells[0], cells[1]) for line in section.splitlines()
            if len(cells := [c.strip() for c in line.strip().strip("|").split("|")]) >= 2]


@pytest.mark.parametrize("module", modules())
def test_module_is_in_where_things_live(module: str) -> None:
    folder, name = module.rsplit("/", 1)
    assert any(f"`{folder}/`" in where and f"`{name}`" in what
               for where, what in where_things_live()), (
        f"{module} is missing from README.md's 'Where things live' table "
        f"(a row for `{folder}/` naming `{name}`)")


@pytest.mark.parametrize("module", [m for m in modules() if not m.startswith("bench/")])
def test_module_is_in_the_architecture_layout(module: str) -> None:
    folder, name = module.rsplit("/", 1)
    sections = re.split(r"^### (.*)$", read(DOCS_DIR / "architecture.md"), flags=re.MULTILINE)
    bodies = [body for heading, body in zip(sections[1::2], sections[2::2], strict=True)
              if heading.startswith(f"`{folder}/`")]
    assert any(f"`{name}`" in body for body in bodies), (
        f"{module} is missing from docs/architecture.md (a line under ### `{folder}/`)")


# -- links ----------------------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[^)]*)?\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def prose(text: str) -> str:
    """The text without code blocks and code spans: what a renderer turns into links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(markdown: str) -> list[str]:
    """Every link target a renderer would make of ``markdown``: inline, reference, HTML."""
    text = prose(markdown)
    return [*INLINE_LINK.findall(text), *REFERENCE_LINK.findall(text), *HTML_LINK.findall(text)]


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", read(path)),
                              flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def link_problem(source: Path, target: str) -> str | None:
    if target.lower().startswith(("http://", "https://", "mailto:")):
        return None
    if SCHEME.match(target):
        return "not a web link"
    location, _, fragment = target.partition("#")
    if location.startswith("/"):
        return "an absolute path: readers of the repository do not have it"
    resolved = (source.parent / location).resolve() if location else source
    if not resolved.is_relative_to(PROJECT_DIR):
        return "outside the repository"
    if not resolved.exists():
        return "no such file in the repository"
    if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
        return f"{resolved.relative_to(PROJECT_DIR)} has no heading #{fragment}"
    return None


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_links_stay_inside_the_repository(doc: Path) -> None:
    problems = [f"{target}: {problem}" for target in links(read(doc))
                if (problem := link_problem(doc, target)) is not None]
    assert not problems, f"{doc.relative_to(PROJECT_DIR)}: " + "; ".join(problems)


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_no_path_outside_the_repository_is_named(doc: Path) -> None:
    """Not even in code: `../shared/…` or this machine's directories mean nothing to a reader."""
    text = read(doc)
    named = [
        path for path in re.findall(r"(?<![\w./-])((?:\.\./)+[\w./-]*)", text)
        if not (doc.parent / path).resolve().is_relative_to(PROJECT_DIR)
    ]
    named += [line.strip() for line in text.splitlines() if str(PROJECT_DIR.parent) + "/" in line]
    assert not named, f"{doc.relative_to(PROJECT_DIR)} names paths outside the repository: " \
        f"{sorted(set(named))}"


def test_the_link_checker_catches_what_it_should() -> None:
    """The checker itself: an escape, a missing file and a missing heading are caught."""
    inside = PROJECT_DIR / "docs" / "architecture.md"
    assert link_problem(inside, "../../shared/ARCHITECTURE.md") == "outside the repository"
    assert link_problem(inside, "/srv/shared/notes.md") is not None
    assert link_problem(inside, "file:///srv/shared/notes.md") == "not a web link"
    assert link_problem(inside, "nothing-here.md") == "no such file in the repository"
    assert link_problem(inside, "protocol.md#no-such-heading") is not None
    assert link_problem(inside, "protocol.md#verified-customers") is None
    assert link_problem(inside, "../README.md") is None
    assert links("see [x](../a.md 'title') and `[y](../b.md)`\n```\n[z](../c.md)\n```\n"
                 "[ref]: ../d.md\n<img src=\"../e.png\">\n") == ["../a.md", "../d.md", "../e.png"]
