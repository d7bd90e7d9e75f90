"""The CLI: every command documented in the README; clear errors for bad input.

The commands run in-process through their entry point (``run_shopchat``); the
installed ``shopchat`` executable itself runs as a process in
``test_bad_configuration_is_reported_without_a_traceback``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from bot.settings import PROJECT_DIR
from shopchat.cli import cli
from tests.conftest import run_shopchat

SHOPCHAT = str(Path(sys.executable).parent / "shopchat")


def command_paths(group: click.Group, prefix: str = "shopchat") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    missing = [path for path in command_paths(cli) if path not in readme]
    assert not missing, f"undocumented commands: {missing}"


def test_eval_nlu_on_a_missing_file_says_so() -> None:
    completed = run_shopchat("eval", "nlu", "--data", "/nonexistent.csv")
    assert completed.returncode == 1
    assert "/nonexistent.csv: no such file." in completed.stderr
    assert "Traceback" not in completed.stderr


def test_bad_configuration_is_reported_without_a_traceback() -> None:
    completed = subprocess.run([SHOPCHAT, "train"], capture_output=True, text=True, check=False,
                               env={"SHOPCHAT_PORT": "not-a-port", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 1
    assert "Bad configuration" in completed.stderr and "port" in completed.stderr
    assert "Traceback" not in completed.stderr


def _shopchat(*args: str, var: Path, stdin: str = "",
              **extra_env: str) -> subprocess.CompletedProcess[str]:
    return run_shopchat(*args, env={"SHOPCHAT_VAR_DIR": str(var), **extra_env}, stdin=stdin)


def test_agents_add_then_list_then_sign_in_with_the_password(tmp_path: Path) -> None:
    from handoff.db.agents import AgentStore
    from handoff.db.conversations import ConversationStore

    added = _shopchat("agents", "add", "kim@shop.example", "--name", "Kim", "--capacity", "4",
                      "--password-stdin", var=tmp_path, stdin="kims long password\n")
    assert added.returncode == 0, added.stderr
    assert "Kim <kim@shop.example>" in added.stdout and "4 chats at once" in added.stdout
    listed = _shopchat("agents", "list", var=tmp_path)
    assert "kim@shop.example" in listed.stdout
    store = ConversationStore(tmp_path / "gateway.db")
    try:
        assert AgentStore(store).login("kim@shop.example", "kims long password", 60) is not None
    finally:
        store.close()
    again = _shopchat("agents", "add", "kim@shop.example", "--name", "Kim",
                      "--password-stdin", var=tmp_path, stdin="kims long password\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr


def test_agents_add_records_the_languages_an_agent_speaks(tmp_path: Path) -> None:
    added = _shopchat("agents", "add", "jean@shop.example", "--name", "Jean",
                      "--languages", "fr, DE", "--password-stdin", var=tmp_path,
                      stdin="jeans long password\n")
    assert added.returncode == 0, added.stderr
    listed = _shopchat("agents", "list", var=tmp_path)
    assert "fr,de" in listed.stdout
    unknown = _shopchat("agents", "add", "ola@shop.example", "--name", "Ola",
                        "--languages", "fr,nl", "--password-stdin", var=tmp_path,
                        stdin="olas long password\n")
    assert unknown.returncode == 1 and "Unknown languages nl" in unknown.stderr


def test_agents_add_refuses_a_short_password(tmp_path: Path) -> None:
    result = _shopchat("agents", "add", "lee@shop.example", "--name", "Lee",
                       "--password-stdin", var=tmp_path, stdin="short\n")
    assert result.returncode == 1 and "at least 10 characters" in result.stderr


def test_agents_passwd_changes_the_password(tmp_path: Path) -> None:
    _shopchat("agents", "add", "max@shop.example", "--name", "Max", "--password-stdin",
              var=tmp_path, stdin="first long password\n")
    changed = _shopchat("agents", "passwd", "max@shop.example", "--password-stdin",
                        var=tmp_path, stdin="second long password\n")
    assert changed.returncode == 0, changed.stderr
    unknown = _shopchat("agents", "passwd", "nobody@shop.example", "--password-stdin",
                        var=tmp_path, stdin="second long password\n")
    assert unknown.returncode == 1 and "No agent" in unknown.stderr


def test_shop_load_fills_an_empty_store_once_and_audit_lists_changes(tmp_path: Path) -> None:
    from bot.settings import Settings
    from bot.store.factory import open_store

    first = _shopchat("shop", "load", var=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "33 products, 22 customers, 60 orders, 6 returns" in first.stdout
    again = _shopchat("shop", "load", var=tmp_path)
    assert "already has data; nothing loaded" in again.stdout
    store = open_store(Settings(var_dir=tmp_path))
    waiting = next(o for o in store.orders_for_customer("cus_0001", 10)
                   if o.status == "processing")
    store.cancel_order(waiting.id, "conv-cli")
    audit = _shopchat("shop", "audit", "--conversation", "conv-cli", var=tmp_path)
    assert "order_cancelled" in audit.stdout and waiting.id in audit.stdout


def test_identity_sign_needs_the_secret_and_makes_a_verifiable_token(tmp_path: Path) -> None:
    from bot.identity import verify_identity

    missing = _shopchat("identity", "sign", "cus_0001", var=tmp_path,
                        SHOPCHAT_IDENTITY_SECRET="")
    assert missing.returncode == 1 and "SHOPCHAT_IDENTITY_SECRET" in missing.stderr
    secret = "cli-secret-at-least-32-bytes-long"
    signed = _shopchat("identity", "sign", "cus_0001", "--ttl", "60", "--email",
                       "anna.berg@example.com", var=tmp_path, SHOPCHAT_IDENTITY_SECRET=secret)
    assert signed.returncode == 0, signed.stderr
    token = verify_identity(signed.stdout.strip(), secret, 3600)
    assert (token.customer_id, token.email) == ("cus_0001", "anna.berg@example.com")
    bad = _shopchat("identity", "sign", "not valid!", var=tmp_path,
                    SHOPCHAT_IDENTITY_SECRET=secret)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    short = _shopchat("identity", "sign", "cus_0001", var=tmp_path,
                      SHOPCHAT_IDENTITY_SECRET="cli-secret")
    assert short.returncode == 1 and "at least 32 bytes" in short.stderr
    assert "Traceback" not in short.stderr
