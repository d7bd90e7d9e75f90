"""The ``shopchat`` command: a thin click layer over functions the tests call directly."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.settings import Settings, load_settings
from shopchat.exceptions import ShopchatError

__all__ = ["main"]

console = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ValueError as error:
        raise click.ClickException(f"Bad configuration: {error}") from error


@click.group()
def cli() -> None:
    """shopchat: a storefront support chatbot with live-agent handoff."""


@cli.command()
@click.option("--rasa-replicas", type=click.IntRange(1, 16), default=None,
              help="Rasa servers to start, each with its own action server, behind the "
              "gateway (default: SHOPCHAT_RASA_REPLICAS, 1). More than one needs "
              "SHOPCHAT_DATABASE_URL and SHOPCHAT_REDIS_URL.")
def up(rasa_replicas: int | None) -> None:
    """Start Rasa, the action server and the gateway; Ctrl-C stops them all."""
    from shopchat.stack import up as run_stack

    overrides = {} if rasa_replicas is None else {"rasa_replicas": rasa_replicas}
    sys.exit(run_stack(_settings(**overrides)))


@cli.command()
@click.option("--force", is_flag=True, help="Train even if nothing changed.")
@click.option("--no-guard", is_flag=True,
              help="Activate the new model even if it measures worse on the held-out set.")
def train(force: bool, no_guard: bool) -> None:
    """Train the Rasa model into models/ (skipped when config and data are unchanged); a
    running `shopchat up` switches to it if it is not worse than the live one."""
    from shopchat.training import train as run_training

    result = run_training(_settings(), force=force, guard=not no_guard)
    if result.skipped:
        click.echo(f"Nothing changed since the last training; using {result.model.name}.")
    elif not result.activated:
        raise click.ClickException(f"Trained {result.model.name} but did not activate it: "
                                   f"{result.reason}.")
    else:
        measured = "" if result.accuracy is None else (
            f" (held-out accuracy {result.accuracy:.4f}"
            + ("" if result.live_accuracy is None else f", live {result.live_accuracy:.4f}")
            + ")")
        click.echo(f"Trained {result.model.name}{measured}.")


@cli.group(name="eval")
def eval_group() -> None:
    """Measure the bot."""


def _print_nlu_report(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['data']}: n={report['n']} accuracy={report['accuracy']:.3f} "
                        f"macro-F1={report['macro_f1']:.3f}")
    for column in ("intent", "support", "precision", "recall", "f1"):
        table.add_column(column, justify="left" if column == "intent" else "right")
    for intent, row in report["per_intent"].items():
        table.add_row(intent, str(row["support"]), f"{row['precision']:.3f}",
                      f"{row['recall']:.3f}", f"{row['f1']:.3f}")
    console.print(table)
    for item in report["top_confusions"]:
        console.print(f"  {item['gold']} → {item['predicted']}: {item['count']}")
    console.print(f"classifier alone (no fallback): accuracy {report['classifier_accuracy']:.3f}, "
                  f"ECE {report['ece']:.3f}, wrong at confidence >= 0.9: "
                  f"{report['confident_wrong']:.1%}")
    for row in report.get("thresholds", []):
        console.print(f"  threshold {row['threshold']:.2f}, ambiguity "
                      f"{row['ambiguity_threshold']:.2f}: accuracy {row['accuracy']:.3f}")


@eval_group.command(name="nlu")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="CSV with header text,intent (canonical intent labels).")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="Model archive (default: the current one).")
@click.option("--calibrate", is_flag=True,
              help="Also sweep the fallback thresholds and show the best five "
                   "(use a calibration set, not an evaluation set).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def eval_nlu(data: Path, model: Path | None, calibrate: bool, as_json: bool) -> None:
    """Intent accuracy, macro-F1, per-intent and calibration figures (ECE, confident
    mistakes) of the trained model on a CSV."""
    from shopchat.nlu_eval import evaluate
    from shopchat.training import current_model

    settings = _settings()
    report = evaluate(settings, model or current_model(settings), data, calibrate=calibrate)
    _print_nlu_report(report)
    if as_json:
        click.echo(json.dumps(report))


@cli.group()
def kb() -> None:
    """The knowledge base: articles in data/kb/, an index in models/kb/."""


@kb.command(name="build")
@click.option("--articles", "articles_dir", type=click.Path(path_type=Path), default=None,
              help="Directory of articles (default: data/kb).")
def kb_build(articles_dir: Path | None) -> None:
    """Check every article and (re)embed the changed ones into the index."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from shopchat.kb_eval import build

    settings = _settings()
    directory = articles_dir or settings.kb_articles_path
    with Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("embed", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = build(directory, settings.kb_index_path, progress=step)
    click.echo(f"Index {report.version}: {report.articles} articles, {report.vectors} vectors; "
               f"embedded {len(report.embedded)}, reused {len(report.reused)}, "
               f"removed {len(report.removed)} ({report.seconds} s).")


@kb.command(name="search")
@click.argument("text")
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True,
              help="How many articles to show.")
def kb_search(text: str, k: int) -> None:
    """Show the best-matching articles for TEXT, with scores and what the bot would do."""
    from bot.kb.answer import decide
    from bot.kb.index import IndexMissing, Retriever

    settings = _settings()
    try:
        matches = Retriever(settings.kb_index_path).search(text, k)
    except IndexMissing as error:
        raise ShopchatError(str(error)) from error
    table = Table(title=f"{text!r}")
    for column in ("score", "article", "title"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for match in matches:
        table.add_row(f"{match.score:.3f}", match.article_id, match.title)
    Console().print(table)
    decision = decide(matches)
    click.echo(f"The bot would: {decision.kind} "
               f"({', '.join(m.article_id for m in decision.matches) or 'no article'})")


def _gaps(days: int) -> list[Any]:
    import time

    from bot.kb.gaps import find_gaps, unanswered_questions
    from bot.kb.index import Retriever

    settings = _settings()
    questions = unanswered_questions(settings.kb_log_db, time.time() - days * 86400,
                                     settings.gateway_db)
    return find_gaps(questions, Retriever(settings.kb_index_path))


@kb.command(name="gaps")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Look at questions from this many days back.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def kb_gaps(days: int, as_json: bool) -> None:
    """Questions the KB could not answer (or answered unhelpfully), grouped by topic."""
    gaps = _gaps(days)
    table = Table(title=f"Missing topics, last {days} days")
    for column in ("gap", "questions", "example", "closest article (score)"):
        table.add_column(column, justify="right" if column in ("gap", "questions") else "left")
    for number, gap in enumerate(gaps, start=1):
        nearest = f"{gap.nearest.article_id} ({gap.nearest.score:.2f})" if gap.nearest else ""
        table.add_row(str(number), str(gap.count), gap.label, nearest)
    Console(stderr=as_json).print(table if gaps else "No unanswered questions in that period.")
    if as_json:
        click.echo(json.dumps({"gaps": [g.as_dict(n) for n, g in enumerate(gaps, start=1)]}))


@kb.command(name="new")
@click.argument("article_id")
@click.option("--gap", "gap_number", type=click.IntRange(1), required=True,
              help="The gap's number in `shopchat kb gaps`.")
@click.option("--title", default=None, help="The article's title (default: the gap's example).")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True)
def kb_new(article_id: str, gap_number: int, title: str | None, days: int) -> None:
    """Scaffold a draft article in data/kb/drafts/ from a gap's questions."""
    from bot.kb.gaps import DraftError, write_draft

    settings = _settings()
    gaps = _gaps(days)
    if gap_number > len(gaps):
        raise click.ClickException(f"There are {len(gaps)} gaps; see `shopchat kb gaps`.")
    gap = gaps[gap_number - 1]
    try:
        target = write_draft(settings.kb_articles_path, article_id, gap, title)
    except DraftError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Wrote {target} with {min(gap.count, 8)} shopper questions. Write the answer, "
               f"move it to {settings.kb_articles_path}/ and run `shopchat kb build`.")


@eval_group.command(name="kb")
@click.option("--articles", "articles_dir", required=True, type=click.Path(path_type=Path),
              help="Directory of articles (same format as data/kb).")
@click.option("--queries", "queries", required=True, type=click.Path(path_type=Path),
              help="CSV with header query,article_id (empty article_id: off-topic).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def eval_kb(articles_dir: Path, queries: Path, as_json: bool) -> None:
    """hit@1, hit@3, MRR and retrieval latency of a fresh index on labelled questions."""
    from shopchat.kb_eval import evaluate_kb

    report = evaluate_kb(articles_dir, queries)
    table = Table(title=f"{report['n']} questions, {report['articles']} articles")
    for column in ("hit@1", "hit@3", "MRR", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    table.add_row(f"{report['hit@1']:.3f}", f"{report['hit@3']:.3f}", f"{report['mrr']:.3f}",
                  str(report["p50_ms"]), str(report["p95_ms"]))
    console.print(table)
    for error in report["errors"]:
        console.print(f"  {error['query']!r}: expected {error['expected']}, got "
                      f"{error['ranked'][:1]} (rank {error['rank']})")
    if as_json:
        click.echo(json.dumps(report))


@cli.group()
def agents() -> None:
    """Accounts for the agent console."""


def _agent_store(settings: Settings) -> Any:
    from handoff.db.agents import AgentStore
    from handoff.db.conversations import ConversationStore

    return AgentStore(ConversationStore(settings.gateway_db))


@agents.command(name="add")
@click.argument("email")
@click.option("--name", required=True, help="The name shoppers see when this agent joins.")
@click.option("--capacity", type=click.IntRange(1, 100), default=None,
              help="Chats at once (default: SHOPCHAT_AGENT_CAPACITY, 3).")
@click.option("--role", type=click.Choice(["agent", "admin", "staff"]), default="agent",
              show_default=True,
              help="admin: also any conversation and /admin/; staff: /admin/ only.")
@click.option("--languages", default="",
              help="Languages the agent speaks, comma-separated (en,de,fr,es): chats in "
                   "them go to this agent first.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
def agents_add(email: str, name: str, capacity: int | None, role: str, languages: str,
               password_stdin: bool) -> None:
    """Create an agent who can sign in to /console/ (password hashed with Argon2id)."""
    from handoff.db.agents import AgentError

    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        agent = _agent_store(settings).add(
            email, name, password, capacity=capacity or settings.agent_capacity, role=role,
            languages=tuple(code.strip().lower() for code in languages.split(",")
                            if code.strip()),
        )
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Added {agent.role} {agent.name} <{agent.email}> (id {agent.id}, "
               f"{agent.capacity} chats at once).")


@agents.command(name="list")
def agents_list() -> None:
    """Every agent account."""
    table = Table(title="Agents")
    for column in ("id", "name", "email", "role", "capacity", "languages"):
        table.add_column(column)
    for agent in _agent_store(_settings()).all():
        table.add_row(agent.id, agent.name, agent.email, agent.role, str(agent.capacity),
                      ",".join(agent.languages))
    Console().print(table)


@agents.command(name="passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def agents_passwd(email: str, password_stdin: bool) -> None:
    """Set a new password (signs the agent out everywhere)."""
    from handoff.db.agents import AgentError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        _agent_store(_settings()).set_password(email, password)
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Password changed for {email}; their open sessions were ended.")


@cli.group()
def shop() -> None:
    """The shop's data: customers, products, orders, returns, and the bot's audit log."""


@shop.command(name="load")
def shop_load() -> None:
    """Load the demo shop (data/shop/) into an empty store; `shopchat up` does it too."""
    from bot.store.demo import DemoDataError, ensure_demo_data

    settings = _settings()
    if settings.shop_backend != "sqlite":
        raise click.ClickException("shop_backend is \"http\": the shop's own API holds the data.")
    try:
        loaded = ensure_demo_data(settings.model_copy(update={"demo_data": True}))
    except DemoDataError as error:
        raise click.ClickException(str(error)) from error
    if loaded is None:
        click.echo(f"{settings.shop_db} already has data; nothing loaded.")
    else:
        click.echo(f"Loaded the demo shop into {settings.shop_db}: {loaded}.")


@shop.command(name="audit")
@click.option("--conversation", default=None, help="Only changes made in this conversation.")
def shop_audit(conversation: str | None) -> None:
    """Every change the bot made to orders and returns, oldest first."""
    from bot.store.factory import open_store

    table = Table(title="Changes made by the bot")
    for column in ("when (UTC)", "action", "target", "conversation", "detail"):
        table.add_column(column)
    for entry in open_store(_settings()).audit_log(conversation):
        table.add_row(f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.action, entry.target,
                      entry.conversation_id or "", json.dumps(entry.detail, ensure_ascii=False))
    Console().print(table)


@cli.command()
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="The period: this many days up to now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write one section of the figures to this CSV file.")
@click.option("--by", "section", type=click.Choice(["days", "intents", "agents", "languages"]),
              default="days", show_default=True, help="The rows of the CSV file.")
def report(days: int, as_json: bool, csv_path: Path | None, section: str) -> None:
    """Support figures: containment, handoffs, waits, CSAT, KB feedback, intents, agents,
    languages."""
    import csv
    import datetime as dt

    from handoff.analytics import build_report, csv_rows

    settings = _settings()
    until = dt.datetime.now(dt.UTC)
    figures = build_report(settings.gateway_db, settings.kb_log_db, settings.tracker_db,
                           until - dt.timedelta(days=days), until)
    if csv_path is not None:
        columns, lines = csv_rows(figures, section)
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(lines)
    totals = figures["totals"]

    def show(value: object) -> str:
        return "n/a" if value is None else str(value)

    table = Table(title=f"Support, last {days} days")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("conversations", totals["conversations"]),
        ("contained by the bot", totals["containment_rate"]),
        ("handed to a person", totals["handoff_rate"]),
        ("handoff reasons", ", ".join(f"{k} {v}" for k, v in totals["handoff_reasons"].items())),
        ("queue wait median / p90 (s)", f"{show(totals['queue_wait_seconds']['median'])} / "
                                        f"{show(totals['queue_wait_seconds']['p90'])}"),
        ("first response median / p90 (s)",
         f"{show(totals['first_response_seconds']['median'])} / "
         f"{show(totals['first_response_seconds']['p90'])}"),
        ("CSAT average (responses)",
         f"{show(totals['csat']['average'])} ({totals['csat']['responses']})"),
        ("KB answers helpful / not", f"{totals['kb']['helpful']} / {totals['kb']['not_helpful']}"),
        ("fallback rate", totals["fallback_rate"]),
        ("offline tickets", totals["offline_tickets"]),
        ("order updates: chat / email / none",
         " / ".join(str(n) for n in totals["order_updates"]["by_channel"].values())),
    ]
    for name, value in rows:
        table.add_row(name, show(value))
    console = Console(stderr=as_json)
    console.print(table)
    if figures["agents"]:
        people = Table(title="Agents")
        for column in ("agent", "chats", "first response median / p90 (s)",
                       "handling median (s)", "CSAT"):
            people.add_column(column)
        for agent in figures["agents"]:
            first = agent["first_response_seconds"]
            people.add_row(agent["agent"], str(agent["chats"]),
                           f"{show(first['median'])} / {show(first['p90'])}",
                           show(agent["handling_seconds"]["median"]),
                           show(agent["csat"]["average"]))
        console.print(people)
    if len(figures["languages"]) > 1:
        spoken = Table(title="Languages")
        for column in ("language", "conversations", "contained by the bot", "handed to a person",
                       "fallback rate"):
            spoken.add_column(column)
        for row in figures["languages"]:
            spoken.add_row(row["lang"], str(row["conversations"]), show(row["containment_rate"]),
                           show(row["handoff_rate"]), show(row["fallback_rate"]))
        console.print(spoken)
    if as_json:
        click.echo(json.dumps(figures))


@cli.group()
def review() -> None:
    """The review inbox: messages the bot handled badly, labelled into training data."""


def _review_items(days: int, include_decided: bool = False) -> list[Any]:
    import time

    from bot.review import list_items

    settings = _settings()
    return list_items(settings.gateway_db, settings.tracker_db, settings.kb_log_db,
                      time.time() - days * 86400, include_decided=include_decided)


@review.command(name="list")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True)
@click.option("--all", "include_decided", is_flag=True, help="Include labelled items too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def review_list(days: int, include_decided: bool, as_json: bool) -> None:
    """Messages to review: misses, low confidence, unhelpful answers, handoffs."""
    items = _review_items(days, include_decided)
    table = Table(title=f"Review inbox, last {days} days ({len(items)} items)")
    for column in ("id", "kind", "message", "bot read it as", "verdict"):
        table.add_column(column)
    for item in items:
        read = f"{item.intent} ({item.confidence:.2f})" if item.confidence is not None \
            else str(item.intent or "")
        table.add_row(item.id, item.kind, item.text, read, item.verdict or "")
    Console(stderr=as_json).print(table)
    if as_json:
        click.echo(json.dumps({"items": [item.as_dict() for item in items]}))


@review.command(name="label")
@click.argument("verdict")
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--by", "decided_by", default="staff", show_default=True,
              help="Who decided (kept with the verdict).")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True)
def review_label(verdict: str, item_ids: tuple[str, ...], decided_by: str, days: int) -> None:
    """Give items a VERDICT (an intent, new_faq or ignore); intents go into
    data/nlu/reviewed.yml for the next `shopchat train`."""
    from bot.review import ReviewError, decide, write_training_file

    settings = _settings()
    try:
        decide(settings.gateway_db, _review_items(days, include_decided=True), list(item_ids),
               verdict, decided_by)
    except ReviewError as error:
        raise click.ClickException(str(error)) from error
    written = write_training_file(settings.gateway_db, settings.project_dir)
    click.echo(f"Labelled {len(item_ids)} as {verdict}; {written['path']} has "
               f"{written['examples']} examples.")
    for skipped in written["skipped"]:
        click.echo(f"  not added: {skipped['text']!r} ({skipped['reason']})", err=True)


@review.command(name="unlabel")
@click.argument("item_ids", nargs=-1, required=True)
def review_unlabel(item_ids: tuple[str, ...]) -> None:
    """Take back the verdicts on ITEM_IDS: they return to the inbox, and out of
    data/nlu/reviewed.yml."""
    from bot.review import undecide, write_training_file

    settings = _settings()
    taken = undecide(settings.gateway_db, list(item_ids))
    if not taken:
        raise click.ClickException("none of these items has a verdict (see `shopchat review "
                                   "list --all`)")
    written = write_training_file(settings.gateway_db, settings.project_dir)
    click.echo(f"Took back {taken} verdicts; {written['path']} has {written['examples']} "
               "examples.")


@cli.group()
def tokens() -> None:
    """Tokens for the integration API (/api/v1, see /api/v1/openapi.json)."""


def _token_store() -> Any:
    from handoff.db.conversations import ConversationStore
    from handoff.db.tokens import TokenStore

    return TokenStore(ConversationStore(_settings().gateway_db))


@tokens.command(name="add")
@click.argument("name")
def tokens_add(name: str) -> None:
    """Make a token called NAME and print it (once: only its hash is kept)."""
    try:
        token = _token_store().add(name)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(token)


@tokens.command(name="list")
def tokens_list() -> None:
    """Token names and when they were made."""
    import datetime as dt

    for row in _token_store().all():
        made = dt.datetime.fromtimestamp(row["created_at"], dt.UTC)
        click.echo(f"{row['name']}\t{made:%Y-%m-%d}")


@tokens.command(name="revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Stop the token called NAME from working at once."""
    if not _token_store().revoke(name):
        raise click.ClickException(f"No token named {name!r}.")
    click.echo(f"Revoked {name}.")


@cli.group()
def privacy() -> None:
    """A shopper's data on request (GDPR), and retention."""


@privacy.command(name="export")
@click.argument("email")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the JSON here instead of standard output.")
def privacy_export(email: str, output: Path | None) -> None:
    """Everything stored about EMAIL, as JSON."""
    from handoff.privacy import export

    data = json.dumps(export(_settings(), email), indent=2, default=str, ensure_ascii=False)
    if output is None:
        click.echo(data)
    else:
        output.write_text(data + "\n", encoding="utf-8")
        click.echo(f"Wrote {output}.", err=True)


@privacy.command(name="delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def privacy_delete(email: str, yes: bool) -> None:
    """Erase EMAIL's conversations everywhere; pseudonymise the shop customer."""
    from handoff.privacy import conversations_of, delete

    settings = _settings()
    found = conversations_of(settings, email)
    if not yes and not click.confirm(f"Delete {len(found)} conversations of {email}?"):
        raise click.Abort()
    counts = delete(settings, email)
    click.echo("Deleted: " + ", ".join(f"{name} {n}" for name, n in counts.items()))


@privacy.command(name="purge")
@click.option("--days", type=click.FloatRange(min=1), required=True,
              help="Delete conversations last active more than this many days ago.")
def privacy_purge(days: float) -> None:
    """Retention: delete old conversations now (the gateway does it daily with
    SHOPCHAT_RETENTION_DAYS)."""
    from handoff.privacy import purge_older_than

    click.echo(f"Deleted {purge_older_than(_settings(), days)} conversations.")


@cli.group()
def orders() -> None:
    """Order updates from the shop (what POST /api/v1/order-events does)."""


@orders.command(name="event")
@click.argument("order_id")
@click.argument("event_type", metavar="TYPE", type=click.Choice(
    ["shipped", "delayed", "out_for_delivery", "delivered", "refund_issued"]))
@click.option("--event-id", default=None,
              help="The shop's id of the event: sent again, it is not posted twice "
              "(default: a new one, printed).")
@click.option("--new-date", default=None, metavar="YYYY-MM-DD",
              help="The new expected delivery date (required for delayed).")
@click.option("--tracking-url", default=None, help="The parcel's tracking page.")
@click.option("--rma", default=None,
              help="refund_issued: the return refunded (default: every open refund).")
@click.option("--note", default=None, help="A line from the shop for the shopper.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
def orders_event(order_id: str, event_type: str, event_id: str | None, new_date: str | None,
                 tracking_url: str | None, rma: str | None, note: str | None,
                 as_json: bool) -> None:
    """Tell the shopper that order ORDER_ID changed: in their recent conversation, else by
    email (SHOPCHAT_ORDER_UPDATES_BY_EMAIL), else only recorded."""
    import asyncio
    import uuid

    from handoff.exceptions import OrderEventError
    from handoff.order_events import post_offline

    body = {"event_id": event_id or f"cli-{uuid.uuid4().hex}", "order_id": order_id,
            "type": event_type, "new_date": new_date, "tracking_url": tracking_url,
            "rma": rma, "note": note}
    try:
        outcome = asyncio.run(post_offline(
            _settings(), {k: v for k, v in body.items() if v is not None}, None))
    except OrderEventError as error:
        raise click.ClickException(error.detail) from error
    if as_json:
        click.echo(json.dumps(outcome.as_json()))
        return
    where = {"conversation": f"posted in conversation {outcome.conversation_id} "
                             f"(seq {outcome.seq})",
             "email": "mailed to the order's address",
             "none": "recorded (no recent conversation of the customer's; mail is off)"}
    again = " (sent before: nothing done now)" if outcome.duplicate else ""
    click.echo(f"Event {outcome.event_id}: {outcome.type} for {outcome.order_id} "
               f"{where[outcome.channel]}{again}.")


@cli.group()
def identity() -> None:
    """Signed customer identities (what the shop's backend gives the widget)."""


@identity.command(name="sign")
@click.argument("customer_id")
@click.option("--ttl", type=click.FloatRange(1, 86400), default=3600, show_default=True,
              help="Seconds the token stays valid.")
@click.option("--email", help="Add the customer's email as the `email` claim.")
@click.option("--name", help="Add the customer's name as the `name` claim.")
def identity_sign(customer_id: str, ttl: float, email: str | None, name: str | None) -> None:
    """Print an HS256 JWT for CUSTOMER_ID signed with SHOPCHAT_IDENTITY_SECRET (for testing;
    a shop signs with its own JWT library, see the README)."""
    from bot.identity import IdentityError, sign_identity

    settings = _settings()
    if settings.identity_secret is None:
        raise click.ClickException("No identity secret: set SHOPCHAT_IDENTITY_SECRET (the one "
                                   "the gateway verifies with).")
    try:
        click.echo(sign_identity(customer_id, settings.identity_secret.get_secret_value(), ttl,
                                 email=email, name=name))
    except IdentityError as error:
        raise click.ClickException(str(error)) from error


@cli.group()
def db() -> None:
    """The gateway database: move it to PostgreSQL."""


@db.command(name="migrate")
@click.option("--database", "address", default=None,
              help="postgresql://… or sqlite:///var/gateway.db (default: SHOPCHAT_DATABASE_URL "
                   "if set, else gateway.db in SHOPCHAT_VAR_DIR).")
def db_migrate(address: str | None) -> None:
    """Bring the gateway database to the newest schema (the gateway does this as it starts;
    this is for upgrading a shared database before the new gateways start)."""
    import asyncio
    import sqlite3

    import asyncpg

    from handoff.db.copy import CopyError, sqlite_path
    from handoff.db.pg_schema import connect_and_migrate
    from handoff.db.schema import MIGRATIONS, migrate

    settings = _settings()
    if address is None and settings.database_url is not None:
        address = settings.database_url.get_secret_value()
    try:
        if address and address.split(":", 1)[0] in ("postgresql", "postgres"):
            version = asyncio.run(connect_and_migrate(address))
            where = "PostgreSQL"
        else:
            path = sqlite_path(address) if address else settings.gateway_db
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path)
            try:
                version = migrate(conn)
            finally:
                conn.close()
            where = str(path)
    except (CopyError, OSError, sqlite3.Error, asyncpg.PostgresError) as error:
        raise click.ClickException(f"Cannot migrate: {error}") from error
    click.echo(f"{where}: schema version {version} (newest {MIGRATIONS[-1].version}).")


@db.command(name="copy")
@click.option("--from", "source", default=None,
              help="The SQLite gateway database: sqlite:///var/gateway.db or a path "
                   "(default: gateway.db in SHOPCHAT_VAR_DIR).")
@click.option("--to", "target", required=True,
              help="The empty PostgreSQL database: postgresql://user@host:5432/shopchat.")
def db_copy(source: str | None, target: str) -> None:
    """Copy every conversation, event, queue entry, agent, ticket and token from the SQLite
    file into an empty PostgreSQL database, in one transaction, checked by row counts and
    each conversation's seqs before it commits."""
    import asyncio

    from handoff.db.copy import CopyError, copy_to_postgres, sqlite_path

    try:
        path = sqlite_path(source) if source else _settings().gateway_db
        report = asyncio.run(copy_to_postgres(path, target))
    except CopyError as error:
        raise click.ClickException(str(error)) from error
    table = Table(title=f"Copied {path} to PostgreSQL")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in report.rows.items():
        table.add_row(name, str(count))
    Console().print(table)
    click.echo(f"Checked: every table's rows, and the seqs of {report.conversations_checked} "
               "conversations.")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except ShopchatError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
