"""``/admin/``: the content staff's workbench (review inbox, figures), and its JSON API.

Staff sign in like agents (``/api/agents/login``) with an account whose role is
``staff`` or ``admin``; every ``/api/admin/*`` request carries the session
token as ``Authorization: Bearer``. The page itself is static (plain HTML/JS in
``handoff/static/admin/``, Chart.js vendored, nothing from a CDN).
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.review import ReviewError, decide, list_items, undecide, write_training_file
from handoff.analytics import CSV_SECTIONS, build_report, csv_rows
from handoff.db.agents import Agent
from handoff.http import AUTH, AUTHORITIES, problem, read_json, requires
from handoff.static import add_app_page

if TYPE_CHECKING:
    # FAISS (and the index code) is imported on the first look at the gaps, not at every
    # gateway start: most gateways never need it.
    from bot.kb.gaps import Gap
    from bot.kb.index import Retriever

__all__ = ["STAFF", "add_admin_routes"]

#: The sign-in of the workbench's API: a staff or admin account's session.
STAFF = "staff"

STATIC = Path(__file__).parent / "static" / "admin"
ADMIN_ROLES = frozenset({"admin", "staff"})


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: An intent, new_faq or ignore; null takes the verdicts back (undo).
    verdict: str | None = Field(min_length=1, max_length=64)
    items: list[str] = Field(min_length=1, max_length=500)


class DraftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The gap's example question, as listed: the gap is found again by it.
    label: str = Field(min_length=1, max_length=500)
    article_id: str = Field(min_length=1, max_length=80)
    title: str | None = Field(None, max_length=200)


def add_admin_routes(app: web.Application, desk_key: web.AppKey[Any],
                     settings_key: web.AppKey[Any]) -> None:
    def staff(request: web.Request, token: str | None) -> Agent:
        login = request.app[desk_key].accounts.authenticate(token) if token else None
        if login is None:
            raise problem(401, "Sign in again: your session is missing or expired.",
                          "unauthorised")
        if login.agent.role not in ADMIN_ROLES:
            raise problem(403, "This needs a staff or admin account.")
        agent: Agent = login.agent
        return agent

    app[AUTHORITIES][STAFF] = staff

    # MiniLM loads on the first look at the gaps (not at start: most gateways never need it).
    retrievers: list[Retriever] = []
    loading = threading.Lock()

    def gaps_of(request: web.Request) -> list[Gap]:
        from bot.kb.gaps import find_gaps, unanswered_questions
        from bot.kb.index import Retriever

        settings = request.app[settings_key]
        with loading:
            if not retrievers:
                retrievers.append(Retriever(settings.kb_index_path))
        questions = unanswered_questions(settings.kb_log_db,
                                         time.time() - days(request) * 86400,
                                         settings.gateway_db)
        return find_gaps(questions, retrievers[0])

    def days(request: web.Request) -> int:
        try:
            value = int(request.query.get("days", "30"))
        except ValueError:
            raise problem(400, "days must be a whole number") from None
        if not 1 <= value <= 3650:
            raise problem(400, "days must be between 1 and 3650")
        return value

    def inbox(request: web.Request, include_decided: bool = False) -> list[Any]:
        settings = request.app[settings_key]
        return list_items(settings.gateway_db, settings.tracker_db, settings.kb_log_db,
                          time.time() - days(request) * 86400, include_decided=include_decided)

    @requires(STAFF)
    async def review(request: web.Request) -> web.Response:
        items = await asyncio.to_thread(inbox, request)
        return web.json_response({"items": [i.as_dict() for i in items]})

    @requires(STAFF)
    async def label(request: web.Request) -> web.Response:
        who: Agent = request[AUTH]  # type: ignore[assignment]
        settings = request.app[settings_key]
        body = await read_json(request, LabelBody,
                               "Send JSON with 'verdict' and a list of 'items'.",
                               settings.http_timeout)

        def store_verdicts() -> dict[str, Any]:
            if body.verdict is None:
                undecide(settings.gateway_db, body.items)
            else:
                try:
                    decide(settings.gateway_db, inbox(request, include_decided=True),
                           body.items, body.verdict, who.email)
                except ReviewError as error:
                    raise problem(400, str(error)) from None
            return write_training_file(settings.gateway_db, settings.project_dir)

        written = await asyncio.to_thread(store_verdicts)
        return web.json_response({"labelled": len(body.items), "training_file": written})

    async def report(request: web.Request) -> dict[str, Any]:
        """The figures, read off the event loop (three databases, own connections)."""
        settings = request.app[settings_key]
        until = datetime.now(UTC)
        return await asyncio.to_thread(
            build_report, settings.gateway_db, settings.kb_log_db, settings.tracker_db,
            until - timedelta(days=days(request)), until)

    @requires(STAFF)
    async def analytics(request: web.Request) -> web.Response:
        return web.json_response(await report(request))

    @requires(STAFF)
    async def analytics_csv(request: web.Request) -> web.Response:
        section = request.query.get("section", "days")
        if section not in CSV_SECTIONS:
            raise problem(400, f"section must be one of {', '.join(CSV_SECTIONS)}")
        columns, rows = csv_rows(await report(request), section)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return web.Response(text=out.getvalue(), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="shopchat-{section}.csv"'})

    @requires(STAFF)
    async def conversation(request: web.Request) -> web.Response:
        """One conversation's transcript, for a review item's "transcript" link."""
        conversation_id = request.match_info["conversation_id"]
        record = request.app[desk_key].store.record(conversation_id)
        if record is None:
            raise problem(404, f"No conversation {conversation_id}: it may have been "
                              "deleted (privacy request or retention).")
        return web.json_response(record)

    @requires(STAFF)
    async def gaps(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(gaps_of, request)
        return web.json_response({"gaps": [g.as_dict(n) for n, g in enumerate(found, start=1)]})

    @requires(STAFF)
    async def draft(request: web.Request) -> web.Response:
        body = await read_json(request, DraftBody,
                               "Send JSON with the gap's 'label', an 'article_id' and "
                               "optionally a 'title'.", request.app[settings_key].http_timeout)
        found = await asyncio.to_thread(gaps_of, request)
        gap = next((g for g in found if g.label == body.label), None)
        if gap is None:
            raise problem(400, "That gap is no longer in the list (new questions regroup the "
                              "gaps): reload and pick it again.")
        from bot.kb.gaps import DraftError, write_draft

        try:
            target = write_draft(request.app[settings_key].kb_articles_path, body.article_id,
                                 gap, body.title)
        except DraftError as error:
            raise problem(400, str(error)) from None
        return web.json_response({"path": str(target), "questions": min(gap.count, 8)})

    app.router.add_get("/api/admin/review", review)
    app.router.add_get("/api/admin/gaps", gaps)
    app.router.add_post("/api/admin/gaps/draft", draft)
    app.router.add_post("/api/admin/review/label", label)
    app.router.add_get("/api/admin/analytics", analytics)
    app.router.add_get("/api/admin/analytics.csv", analytics_csv)
    app.router.add_get("/api/admin/conversations/{conversation_id}", conversation)
    add_app_page(app, "admin", STATIC, aliases=("/admin/analytics", "/admin/conversation",
                                                 "/admin/gaps"))
