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


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as error:
        raise click.ClickException(f"Bad configuration: {error}") from error


@click.group()
def cli() -> None:
    """shopchat: a storefront support chatbot with live-agent handoff."""


@cli.command()
def up() -> None:
    """Start Rasa, the action server and the gateway; Ctrl-C stops all three."""
    from shopchat.stack import up as run_stack

    sys.exit(run_stack(_settings()))


@cli.command()
@click.option("--force", is_flag=True, help="Train even if nothing changed.")
def train(force: bool) -> None:
    """Train the Rasa model into models/ (skipped when config and data are unchanged)."""
    from shopchat.training import train as run_training

    result = run_training(_settings(), force=force)
    if result.skipped:
        click.echo(f"Nothing changed since the last training; using {result.model.name}.")
    else:
        click.echo(f"Trained {result.model.name}.")


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


@eval_group.command(name="nlu")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="CSV with header text,intent (canonical intent labels).")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="Model archive (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def eval_nlu(data: Path, model: Path | None, as_json: bool) -> None:
    """Intent accuracy, macro-F1 and per-intent figures of the trained model on a CSV."""
    from shopchat.nlu_eval import evaluate
    from shopchat.training import current_model

    settings = _settings()
    report = evaluate(settings, model or current_model(settings), data)
    _print_nlu_report(report)
    if as_json:
        click.echo(json.dumps(report))


@cli.group()
def agents() -> None:
    """Accounts for the agent console."""


def _agent_store(settings: Settings) -> Any:
    from handoff.agents import AgentStore
    from handoff.persistence import ConversationStore

    return AgentStore(ConversationStore(settings.gateway_db))


@agents.command(name="add")
@click.argument("email")
@click.option("--name", required=True, help="The name shoppers see when this agent joins.")
@click.option("--capacity", type=click.IntRange(1, 100), default=None,
              help="Chats at once (default: SHOPCHAT_AGENT_CAPACITY, 3).")
@click.option("--role", type=click.Choice(["agent", "admin"]), default="agent", show_default=True,
              help="Admins may open any conversation.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
def agents_add(email: str, name: str, capacity: int | None, role: str,
               password_stdin: bool) -> None:
    """Create an agent who can sign in to /console/ (password hashed with Argon2id)."""
    from handoff.agents import AgentError

    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        agent = _agent_store(settings).add(
            email, name, password, capacity=capacity or settings.agent_capacity, role=role
        )
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Added {agent.role} {agent.name} <{agent.email}> (id {agent.id}, "
               f"{agent.capacity} chats at once).")


@agents.command(name="list")
def agents_list() -> None:
    """Every agent account."""
    table = Table(title="Agents")
    for column in ("id", "name", "email", "role", "capacity"):
        table.add_column(column)
    for agent in _agent_store(_settings()).all():
        table.add_row(agent.id, agent.name, agent.email, agent.role, str(agent.capacity))
    Console().print(table)


@agents.command(name="passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def agents_passwd(email: str, password_stdin: bool) -> None:
    """Set a new password (signs the agent out everywhere)."""
    from handoff.agents import AgentError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        _agent_store(_settings()).set_password(email, password)
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Password changed for {email}; their open sessions were ended.")


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
