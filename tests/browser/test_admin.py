"""The workbench in a real browser: staff label inbox messages with the keyboard, and the
analytics page draws its charts (screenshot kept as an artifact)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from bot.settings import PROJECT_DIR, Settings
from handoff.persistence import ConversationStore
from shopchat.stack import free_port
from tests.bot.test_review import seed
from tests.conftest import AGENT_PASSWORD, Gateway, add_agent


@pytest.fixture
async def workbench(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on a copy of the project's NLU data (labels write data/nlu/reviewed.yml)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "data" / "nlu", project / "data" / "nlu")
    (project / "widget").symlink_to(PROJECT_DIR / "widget")
    (project / "data" / "console").symlink_to(PROJECT_DIR / "data" / "console")
    var = tmp_path / "var"
    seed(var)
    store = ConversationStore(var / "gateway.db")
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
    gateway = Gateway(settings)
    await gateway.start()
    yield gateway
    await gateway.stop()


async def test_staff_label_with_the_keyboard_and_see_the_analytics(
    browser: Browser, workbench: Gateway, artifacts: Path,
) -> None:
    # Reduced motion: the charts draw at once (and the page must honour the setting).
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        reduced_motion="reduce")
    try:
        page = await context.new_page()
        await page.goto(f"{workbench.http}/admin/")
        await page.fill("#email", "kim@shop.example")
        await page.fill("#password", AGENT_PASSWORD)
        await page.press("#password", "Enter")
        rows = page.locator("#rows tr")
        await expect(rows).to_have_count(5)
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

        await page.click("#tab-analytics")
        await expect(page.locator("#figures .figure").first).to_contain_text("Conversations")
        await expect(page.locator("#intents tr").first).to_be_visible()
        assert await page.evaluate("document.querySelectorAll('canvas').length") == 3
        drawn = await page.evaluate(
            "Chart.getChart(document.getElementById('chart-days')) !== undefined")
        assert drawn
        await page.screenshot(path=str(artifacts / "analytics.png"), full_page=True)
    finally:
        await context.close()


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
            assert response.status == 400 and "unknown verdict" in (await response.json())["error"]
        # A staff account is not an agent: the console's socket refuses it.
        url = workbench.http.replace("http", "ws") + "/ws/agent"
        async with session.ws_connect(url) as ws:
            await ws.send_json({"type": "auth", "token": staff_token})
            refused = await ws.receive_json()
            assert "use /admin/" in refused["reason"]
