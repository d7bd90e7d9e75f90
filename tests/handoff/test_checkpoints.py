"""The gateway's write-ahead log is checkpointed in a thread, never inside a commit
(handoff.db.conversations.Checkpoints): a commit that checkpoints fsyncs, and every
socket of the gateway waited for it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.settings import Settings
from handoff.app import HUB, start
from handoff.db.conversations import Checkpoints, ConversationStore
from shopchat.stack import free_port


def fill(store: ConversationStore, pages: int) -> None:
    """Commit about ``pages`` pages of events, one small transaction at a time."""
    conversation, _ = store.create_conversation(None)
    for _ in range(pages // 2):
        store.append(conversation.id, {"type": "message", "author": "bot", "text": "x" * 7000})


def database_pages(path: Path) -> int:
    return path.stat().st_size // 4096


async def test_commits_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "gateway.db")
    checkpoints = Checkpoints(store, interval=3600)  # only when asked, here
    await checkpoints.start()
    before = database_pages(store.path)
    fill(store, 3000)  # three times what makes SQLite checkpoint inside a commit
    assert database_pages(store.path) == before  # every page still only in the log
    await checkpoints.checkpoint()
    assert database_pages(store.path) > before + 2500
    await checkpoints.close()
    store.close()


async def test_the_checkpointer_runs_by_itself_and_hands_back_on_close(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "gateway.db")
    checkpoints = Checkpoints(store, interval=0.05)
    await checkpoints.start()
    before = database_pages(store.path)
    fill(store, 400)
    for _ in range(200):
        if database_pages(store.path) > before + 300:
            break
        await asyncio.sleep(0.05)
    assert database_pages(store.path) > before + 300
    await checkpoints.close()
    # Stopped: the store checkpoints inside commits again, as SQLite does by default.
    grown = database_pages(store.path)
    fill(store, 3000)
    assert database_pages(store.path) > grown
    store.close()


async def test_the_gateway_checkpoints_off_its_event_loop(tmp_path: Path) -> None:
    settings = Settings(port=free_port(), var_dir=tmp_path / "var")
    runner = await start(settings)
    try:
        store = runner.app[HUB].store
        (autocheckpoint,) = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert autocheckpoint == 0
    finally:
        await runner.cleanup()
