"""The integration API: read-only REST for a shop's helpdesk, CRM or BI, with an OpenAPI document.

``/api/v1/*`` answers only requests with ``Authorization: Bearer <token>``
for a token made with ``shopchat tokens add`` (stored as its SHA-256, shown
once). Conversations with their transcripts, offline tickets and the support
figures of ``shopchat report``. ``/api/v1/openapi.json`` describes it all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handoff.analytics import build_report
from handoff.db.conversations import ConversationStore
from handoff.db.desk import DeskStore
from handoff.db.tokens import TokenStore
from handoff.http import AUTHORITIES, problem, requires
from handoff.order_events import OrderEvent

__all__ = ["API_TOKEN", "OPENAPI", "add_api_routes"]

#: The sign-in of the integration API: a token made with ``shopchat tokens add``.
API_TOKEN = "api_token"


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationsQuery(_Query):
    since: float = Field(0, ge=0, description="Unix time: only conversations active since.")
    limit: int = Field(100, ge=1, le=500)


class TicketsQuery(_Query):
    status: str | None = Field(None, pattern=r"^(open|done)$",
                               description="open, or done (marked done in the console)")
    limit: int = Field(100, ge=1, le=500)


class MetricsQuery(_Query):
    days: int = Field(30, ge=1, le=3650)


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
        return web.json_response(
            {"conversations": store(request).active_since(query.since, query.limit)})

    @requires(API_TOKEN)
    async def conversation(request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        record = store(request).record(conversation_id)
        if record is None:
            raise problem(404, f"No conversation {conversation_id}.", "not_found")
        return web.json_response(record)

    @requires(API_TOKEN)
    async def tickets(request: web.Request) -> web.Response:
        query = _query(request, TicketsQuery)
        tickets = DeskStore(store(request)).tickets(query.status, query.limit)
        return web.json_response({"tickets": tickets})

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
                            "and support figures; the shop's order updates and the inbound "
                            "mail endpoint. Events are "
                            "pushed by webhooks (docs/webhooks.md)."},
    "components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "mail_signature": {"type": "apiKey", "in": "header", "name": "X-Shopchat-Signature",
                           "description": "sha256=<hex HMAC-SHA256 of the raw body>"}}},
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
        "/api/v1/inbound-mail": {"post": {
            "summary": "A received mail (raw RFC 5322), signed with X-Shopchat-Signature: "
                       "sha256=<hex HMAC-SHA256 of the body with SHOPCHAT_INBOUND_MAIL_SECRET>"
                       "; a reply joins its ticket's conversation (docs/email.md)",
            "security": [{"mail_signature": []}],
            "requestBody": {"required": True, "content": {"message/rfc822": {
                "schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": {"description": "appended, new_ticket or ignored",
                                  "content": {"application/json": {}}},
                          "400": _ERROR, "401": _ERROR, "404": _ERROR, "413": _ERROR}}},
        "/api/v1/order-events": {"post": {
            "summary": "An order changed (shipped, delayed, out for delivery, delivered, refund "
                       "issued): the bot tells the customer in their recent conversation, "
                       "else by mail when the shop enables it (docs/email.md). 201: taken; "
                       "200: the same event_id / Idempotency-Key again, nothing done",
            "security": [{"bearer": []}],
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "maxLength": 100}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": OrderEvent.model_json_schema()}}},
            "responses": {"201": {"description": "where the update went",
                                  "content": {"application/json": {}}},
                          "200": {"description": "a repeat: the first outcome",
                                  "content": {"application/json": {}}},
                          "400": _ERROR, "401": _ERROR, "404": _ERROR, "409": _ERROR,
                          "503": _ERROR}}},
        "/api/v1/openapi.json": {"get": {"summary": "This document",
                                         "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}
OPENAPI["paths"]["/api/v1/conversations/{conversation_id}"]["get"]["responses"]["404"] = _ERROR
