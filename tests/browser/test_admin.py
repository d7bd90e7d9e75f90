"""The workbench in a real browser: staff label inbox messages with the keyboard, and the
analytics page draws its charts (screenshot kept as an artifact)."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from bot.settings import PROJECT_DIR, Settings
from handoff.db.conversations import ConversationStore
from shopchat.stack import free_port
from tests.bot.test_review import seed
from tests.browser.conftest import open_page
from tests.browser.test_console import sign_in
from tests.conftest import AGENT_PASSWORD, Gateway, add_agent
from tests.kb.test_gaps import WRAPPING
from tests.kb.test_gaps import seed as seed_gaps


@pytest.fixture
async def workbench(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on a copy of the project's NLU data (labels write data/nlu/reviewed.yml)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "data" / "nlu", project / "data" / "nlu")
    (project / "widget").symlink_to(PROJECT_DIR / "widget")
    (project / "data" / "console").symlink_to(PROJECT_DIR / "data" / "console")
    var = tmp_path / "var"
    seed(var)
    seed_gaps(var)
    store = ConversationStore(var / "gateway.db")
    for text in ("where is my order", "this is taking forever"):  # conversation c2's words
        store.append_shopper_message("c2", text, {"type": "message", "author": "shopper",
                                                  "text": text})
    now = time.time()
    for n, (trigger, csat) in enumerate([("requested", 5), ("fallback", 4), (None, None),
                                         (None, None), ("complaint", 2), (None, None)]):
        conversation, _ = store.create_conversation(None)
        store.append_shopper_message(conversation.id, "m", {
            "type": "message", "author": "shopper", "text": "hello"})
        store.db.execute("UPDATE conversations SET created_at = ? WHERE id = ?",
                         [now - (n % 3) * 86400, conversation.id])
        if trigger:
            store.db.execute(
                "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at, "
                "assigned_at, first_response_at, resolution, csat_score) VALUES "
                "(?, 'closed', ?, 'r', ?, ?, ?, 'resolved', ?)",
                [conversation.id, trigger, now - 600, now - 560, now - 540, csat])
    store.close()
    settings = Settings(var_dir=var, project_dir=project, port=free_port())
    add_agent(settings, "kim@shop.example", "Kim", role="staff")
    add_agent(settings, "ola@shop.example", "Ola")
    with sqlite3.connect(var / "gateway.db") as conn:  # Ola had the seeded chats
        conn.execute("UPDATE handoffs SET agent_id = (SELECT id FROM agents WHERE name = 'Ola'),"
                     " ended_at = queued_at + 300 WHERE assigned_at IS NOT NULL")
    gateway = Gateway(settings)
    await gateway.start()
    yield gateway
    await gateway.stop()


async def test_staff_label_with_the_keyboard_and_see_the_analytics(
    browser: Browser, workbench: Gateway, artifacts: Path,
) -> None:
    # Reduced motion: the charts draw at once (and the page must honour the setting).
    async with open_page(browser, viewport={"width": 1280, "height": 900},
                         reduced_motion="reduce") as page:
        await sign_in(page, workbench, "kim@shop.example", "/admin/")
        rows = page.locator("#rows tr")
        await expect(rows).to_have_count(6)  # 5 from the review seed, 1 unhelpful KB answer
        target = rows.filter(has_text="wheres my stuff at")
        index = [await r.inner_text() for r in await rows.all()].index(
            await target.inner_text())
        await page.select_option("#verdict", "track_order")
        await page.locator("body").click(position={"x": 5, "y": 5})
        for _ in range(index):
            await page.keyboard.press("j")
        await page.keyboard.press("x")
        await page.keyboard.press("l")
        await expect(page.locator("#status")).to_contain_text("Labelled 1 as track_order")
        await expect(target).to_have_class(re.compile(r"\bdone\b"))
        reviewed = workbench.settings.project_dir / "data" / "nlu" / "reviewed.yml"
        assert "    - wheres my stuff at" in reviewed.read_text()

        # A whole kind at once, then undone: the messages are back, the file as it was.
        await page.select_option("#kind", "low_confidence")
        await page.locator("body").click(position={"x": 5, "y": 5})
        await expect(rows).to_have_count(2)
        await page.keyboard.press("a")
        await expect(page.locator("#rows input:checked")).to_have_count(2)
        await page.keyboard.press("i")
        await expect(page.locator("#status")).to_contain_text("Labelled 2 as ignore")
        await page.keyboard.press("u")
        await expect(page.locator("#status")).to_contain_text("Undone: 2 back as they were")
        await expect(rows.filter(has_text="wheres my stuff at")).to_have_class(
            re.compile(r"\bdone\b"))  # it was labelled track_order before: restored
        await expect(rows.filter(has_text="where is my shipment")).not_to_have_class(
            re.compile(r"\bdone\b"))
        assert "    - wheres my stuff at" in reviewed.read_text()
        with sqlite3.connect(workbench.settings.gateway_db) as conn:
            verdicts = dict(conn.execute("SELECT text, verdict FROM review_verdicts"))
        assert verdicts == {"wheres my stuff at": "track_order"}

        # The transcript behind a handoff, the message under review marked.
        await page.select_option("#kind", "handoff")
        await page.locator("body").click(position={"x": 5, "y": 5})
        await expect(rows).to_have_count(1)
        await page.keyboard.press("o")
        await expect(page).to_have_url(re.compile(r"/admin/conversation\?id=c2"))
        marked = page.locator("#transcript .reviewed")
        await expect(marked).to_have_count(1)
        await expect(marked).to_contain_text("this is taking forever")
        await expect(page.locator("#transcript .line.shopper")).to_have_count(2)
        await page.click("#back")

        await page.click("#tab-analytics")
        await expect(page.locator("#figures .figure").first).to_contain_text("Conversations")
        await expect(page.locator("#figures .figure").last).to_have_text(
            "Order updates0 (0 in chats, 0 by mail)")
        await expect(page.locator("#intents tr").first).to_be_visible()
        await expect(page.locator("#agents tr")).to_have_count(1)
        await expect(page.locator("#agents tr td").first).to_have_text("Ola")
        await expect(page.locator("#languages tr td").first).to_have_text("en")
        async with page.expect_download() as download_info:
            await page.click(".downloads a[data-section='agents']")
        download = await download_info.value
        with open(await download.path(), newline="") as handle:
            agents = list(csv.DictReader(handle))
        assert [(a["agent"], a["chats"], a["handling_median"]) for a in agents] == [
            ("Ola", "3", "260.0")]
        assert await page.evaluate("document.querySelectorAll('canvas').length") == 3
        drawn = await page.evaluate(
            "Chart.getChart(document.getElementById('chart-days')) !== undefined")
        assert drawn
        await page.screenshot(path=str(artifacts / "analytics.png"), full_page=True)


async def test_staff_draft_an_article_for_the_biggest_kb_gap(
    browser: Browser, workbench: Gateway,
) -> None:
    async with open_page(browser) as page:
        await sign_in(page, workbench, "kim@shop.example", "/admin/gaps")
        first = page.locator("#gap-rows tr").first
        await expect(first.locator("td").first).to_have_text("3", timeout=60_000)
        label = await first.locator("td").nth(1).inner_text()
        assert label in WRAPPING
        await first.locator("input").fill("gift-wrapping")
        await first.locator("button").click()
        await expect(page.locator("#gaps-status")).to_contain_text("Wrote")
        draft = workbench.settings.kb_articles_path / "drafts" / "gift-wrapping.md"
        assert all(question in draft.read_text() for question in WRAPPING)
        # The same id again is refused with the reason; nothing is overwritten.
        await page.reload()
        await expect(first.locator("td").first).to_have_text("3", timeout=60_000)
        await first.locator("input").fill("gift-wrapping")
        await first.locator("button").click()
        await expect(page.locator("#gaps-status")).to_contain_text("exists already")


async def test_the_admin_api_needs_a_staff_or_admin_session(workbench: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{workbench.http}/api/admin/review") as response:
            assert response.status == 401
        async with session.post(f"{workbench.http}/api/agents/login", json={
                "email": "ola@shop.example", "password": AGENT_PASSWORD}) as response:
            agent_token = (await response.json())["token"]
        async with session.get(f"{workbench.http}/api/admin/analytics",
                               headers={"Authorization": f"Bearer {agent_token}"}) as response:
            assert response.status == 403
        async with session.post(f"{workbench.http}/api/agents/login", json={
                "email": "kim@shop.example", "password": AGENT_PASSWORD}) as response:
            staff_token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {staff_token}"}
        async with session.post(f"{workbench.http}/api/admin/review/label", headers=headers,
                                json={"verdict": "buy_now", "items": ["x"]}) as response:
            assert response.status == 400 and "unknown verdict" in (await response.json())["detail"]
        async with session.get(f"{workbench.http}/api/admin/conversations/nope",
                               headers=headers) as response:
            assert response.status == 404 and "deleted" in (await response.json())["detail"]
        async with session.get(f"{workbench.http}/api/admin/conversations/c2") as response:
            assert response.status == 401
        async with session.get(f"{workbench.http}/api/admin/analytics.csv?section=weeks",
                               headers=headers) as response:
            assert response.status == 400
            assert "days, intents, agents" in (await response.json())["detail"]
        # A staff account is not an agent: the console's socket refuses it.
        url = workbench.http.replace("http", "ws") + "/ws/agent"
        async with session.ws_connect(url) as ws:
            await ws.send_json({"type": "auth", "token": staff_token})
            refused = await ws.receive_json()
            assert "use /admin/" in refused["reason"]


async def test_the_transcript_shows_names_as_typed_and_an_open_handoff_as_open(
    browser: Browser, workbench: Gateway,
) -> None:
    name = 'Eve <img src=x onerror="window.__xss=1">'
    store = ConversationStore(workbench.settings.gateway_db)
    conversation, _ = store.create_conversation(None)
    store.append(conversation.id, {"type": "message", "author": "shopper",
                                   "text": "can I talk to someone"})
    store.append(conversation.id, {"type": "message", "author": "agent",
                                   "agent": {"id": "a1", "name": name}, "text": "Eve here"})
    now = time.time()
    store.db.execute(
        "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at, assigned_at)"
        " VALUES (?, 'assigned', 'requested', 'shopper asked for a person', ?, ?)",
        [conversation.id, now - 60, now - 30])
    store.close()
    async with open_page(browser) as page:
        await sign_in(page, workbench, "kim@shop.example",
                      f"/admin/conversation?id={conversation.id}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("shopchat workbench")
        facts = page.locator("#conversation-facts")
        await expect(facts).to_contain_text("1 handoff: open, with an agent")
        assert "ended" not in await facts.inner_text()
        # As rendered (inner text, after any CSS text-transform), not just as stored.
        await expect(page.locator("#transcript .agent .who")).to_have_text(
            name, use_inner_text=True)
        await expect(page.locator("#transcript .shopper .who")).to_have_text(
            "Shopper", use_inner_text=True)
        assert await page.evaluate("window.__xss") is None
        await page.goto(f"{workbench.http}/admin/")
        await expect(page.get_by_role("heading", level=1)).to_have_text("shopchat workbench")
