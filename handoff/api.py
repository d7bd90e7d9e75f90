"""The integration API: read-only REST for a shop's helpdesk, CRM or BI, with an OpenAPI document.

``/api/v1/*`` answers only requests with ``Authorization: Bearer <token>``
for a token made with ``shopchat tokens add`` (stored as its SHA-256, shown
once). Conversations with their transcripts, offline tickets and the support
figures of ``shopchat report``. ``/api/v1/openapi.json`` describes it all.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handoff.analytics import build_report
from handoff.http import AUTHORITIES, problem, requires
from handoff.persistence import ConversationStore, hash_token, is_token

__all__ = ["API_TOKEN", "OPENAPI", "TokenStore", "add_api_routes", "conversation_record"]

#: The sign-in of the integration API: a token made with ``shopchat tokens add``.
API_TOKEN = "api_token"



class TokenStore:
    def __init__(self, store: ConversationStore) -> None:
        self.db = store.db

    def add(self, name: str) -> str:
        """A new token for ``name`` (returned once; only its hash is kept)."""
        if not name.strip() or len(name) > 80:
            raise ValueError("a token needs a name of 1-80 characters")
        if list(self.db.query("SELECT 1 FROM api_tokens WHERE name = ?", [name])):
            raise ValueError(f"a token named {name!r} exists already; revoke it first")
        token = "sc_" + secrets.token_urlsafe(32)
        self.db.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                        [name, hash_token(token), time.time()])
        return token

    def revoke(self, name: str) -> bool:
        cursor = self.db.execute("DELETE FROM api_tokens WHERE name = ?", [name])
        return bool(cursor.rowcount)

    def all(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT name, created_at FROM api_tokens ORDER BY name"))

    def valid(self, token: str) -> bool:
        if not is_token(token):
            return False
        digest = hash_token(token)
        rows = list(self.db.query("SELECT token_hash FROM api_tokens", []))
        # Compare against every hash so the time taken says nothing about which matched.
        return any([hmac.compare_digest(row["token_hash"], digest) for row in rows])


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationsQuery(_Query):
    since: float = Field(0, ge=0, description="Unix time: only conversations active since.")
    limit: int = Field(100, ge=1, le=500)


class TicketsQuery(_Query):
    status: str | None = Field(None, pattern=r"^(open|closed)$")
    limit: int = Field(100, ge=1, le=500)


class MetricsQuery(_Query):
    days: int = Field(30, ge=1, le=3650)


def row_to_conversation(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "mode": row["mode"], "customer_id": row["customer_id"],
            "page": json.loads(row["page"]) if row["page"] else None,
            "last_seq": row["last_seq"], "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


def conversation_record(store: ConversationStore, conversation_id: str) -> dict[str, Any] | None:
    """A conversation with its whole transcript and handoffs; None if there is none."""
    rows = list(store.db.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
    if not rows:
        return None
    events = store.events_after(conversation_id, 0)
    handoffs = list(store.db.query(
        "SELECT id, state, trigger, reason, agent_id, queued_at, assigned_at, "
        "first_response_at, ended_at, resolution, csat_score, csat_comment FROM handoffs "
        "WHERE conversation_id = ? ORDER BY id", [conversation_id]))
    return {**row_to_conversation(rows[0]),
            "transcript": [{"seq": e.seq, **e.frame} for e in events], "handoffs": handoffs}


def _query(request: web.Request, model: type[_Query]) -> Any:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise problem(400, detail, "bad_query") from None


def add_api_routes(app: web.Application, store_key: web.AppKey[Any],
                   settings_key: web.AppKey[Any]) -> None:
    """``store_key`` names the app's Hub (its ``.store``); ``settings_key`` the Settings."""

    def store(request: web.Request) -> ConversationStore:
        hub = request.app[store_key]
        conversation_store: ConversationStore = hub.store
        return conversation_store

    def api_client(request: web.Request, token: str | None) -> str:
        if token is None or not TokenStore(store(request)).valid(token):
            raise problem(401, "Send Authorization: Bearer <token> (create one with `shopchat "
                               "tokens add NAME`).", "unauthorised")
        return "api token"

    app[AUTHORITIES][API_TOKEN] = api_client

    @requires(API_TOKEN)
    async def conversations(request: web.Request) -> web.Response:
        query = _query(request, ConversationsQuery)
        rows = store(request).db.query(
            "SELECT * FROM conversations WHERE updated_at >= ? ORDER BY updated_at DESC "
            "LIMIT ?", [query.since, query.limit])
        return web.json_response({"conversations": [row_to_conversation(r) for r in rows]})

    @requires(API_TOKEN)
    async def conversation(request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        record = conversation_record(store(request), conversation_id)
        if record is None:
            raise problem(404, f"No conversation {conversation_id}.", "not_found")
        return web.json_response(record)

    @requires(API_TOKEN)
    async def tickets(request: web.Request) -> web.Response:
        query = _query(request, TicketsQuery)
        sql, params = "SELECT * FROM tickets", []
        if query.status:
            sql, params = sql + " WHERE status = ?", [query.status]
        rows = store(request).db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, query.limit])
        return web.json_response({"tickets": list(rows)})

    @requires(API_TOKEN)
    async def metrics(request: web.Request) -> web.Response:
        query = _query(request, MetricsQuery)
        settings = request.app[settings_key]
        until = datetime.now(UTC)
        # Reads three databases through connections of its own: off the event loop.
        report = await asyncio.to_thread(
            build_report, settings.gateway_db, settings.kb_log_db, settings.tracker_db,
            until - timedelta(days=query.days), until)
        return web.json_response(report)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    app.router.add_get("/api/v1/conversations", conversations)
    app.router.add_get("/api/v1/conversations/{conversation_id}", conversation)
    app.router.add_get("/api/v1/tickets", tickets)
    app.router.add_get("/api/v1/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)


def _params(model: type[_Query]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [{"name": name, "in": "query", "required": False, "schema": spec}
            for name, spec in schema["properties"].items()]


_ERROR = {"description": "Problem (RFC 9457)", "content": {"application/problem+json": {
    "schema": {"type": "object", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what to do about it, for a person"},
        "code": {"type": "string", "description": "what happened, for a program"}}}}}}


def _get(summary: str, params: list[dict[str, Any]], ok: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params, "security": [{"bearer": []}],
                    "responses": {"200": {"description": ok,
                                          "content": {"application/json": {}}},
                                  "400": _ERROR, "401": _ERROR}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shopchat integration API", "version": "1",
             "description": "Read-only access to conversations, transcripts, offline tickets "
                            "and support figures. Events are pushed by webhooks "
                            "(docs/webhooks.md)."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/v1/conversations": _get("Conversations, most recently active first",
                                      _params(ConversationsQuery), "conversations"),
        "/api/v1/conversations/{conversation_id}": {
            **_get("One conversation with its full transcript and handoffs",
                   [{"name": "conversation_id", "in": "path", "required": True,
                     "schema": {"type": "string"}}], "the conversation"),
        },
        "/api/v1/tickets": _get("Messages shoppers left for the team", _params(TicketsQuery),
                                "tickets"),
        "/api/v1/metrics": _get("The support figures of `shopchat report`",
                                _params(MetricsQuery), "the report"),
        "/api/v1/openapi.json": {"get": {"summary": "This document",
                                         "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}
OPENAPI["paths"]["/api/v1/conversations/{conversation_id}"]["get"]["responses"]["404"] = _ERROR
