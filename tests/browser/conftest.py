"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.settings import PROJECT_DIR
from tests.mail.conftest import mail_gateway, mailbox  # noqa: F401  (fixtures for the mail pages)

CHROMIUM = Path("/usr/bin/chromium")
#: Without the background-networking flags Chromium keeps calling home on a closed network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
#: Playwright's 5 s default is short for a Rasa turn on a busy 2-core machine (the first
#: knowledge-base answer also loads the embedding model).
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (apt-get install chromium)")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@asynccontextmanager
async def open_page(browser: Browser, **options: Any) -> AsyncIterator[Page]:
    """A page in a fresh browser context (its own cookies and storage), closed after."""
    context = await browser.new_context(**options)
    try:
        yield await context.new_page()
    finally:
        await context.close()
