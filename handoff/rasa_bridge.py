"""Talking to Rasa (REST webhook and HTTP API) and to the action server, over loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import aiohttp

from bot.cards import parse_card
from bot.escalation import parse_handoff
from handoff.exceptions import RasaUnavailable

__all__ = ["Bot", "RasaBridge", "replies_to_frames"]

log = logging.getLogger("gateway.rasa")


def replies_to_frames(replies: object, reply_to: int) -> list[dict[str, Any]]:
    """Turn the REST webhook's answer into event frames for the conversation log.

    Text (with its quick-reply buttons) becomes a bot ``message``; a custom
    payload carrying a card (:mod:`bot.cards`) becomes that message's
    ``card``; one carrying a handoff request becomes a ``handoff`` event. Anything
    malformed is dropped with a log line rather than shown to a shopper.
    """
    frames: list[dict[str, Any]] = []
    if not isinstance(replies, list):
        log.warning("rasa returned %s instead of a list of messages", type(replies).__name__)
        return frames
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        text = reply.get("text")
        if isinstance(text, str) and text:
            frame: dict[str, Any] = {
                "type": "message",
                "author": "bot",
                "text": text,
                "reply_to": reply_to,
            }
            buttons = [
                {"title": b["title"], "payload": b["payload"]}
                for b in reply.get("buttons") or []
                if isinstance(b, dict)
                and isinstance(b.get("title"), str)
                and isinstance(b.get("payload"), str)
            ]
            if buttons:
                frame["buttons"] = buttons
            frames.append(frame)
        card = parse_card(reply.get("custom"))
        # Rasa sends an action's text and its custom payload as two replies: the card
        # belongs to the message just before it.
        if card is not None and frames and frames[-1]["type"] == "message":
            frames[-1]["card"] = card
        handoff = parse_handoff(reply.get("custom"))
        if handoff is not None:
            frames.append({"type": "handoff", "reply_to": reply_to, **handoff})
    return frames


class Bot(Protocol):
    """What the gateway needs of the assistant: :class:`RasaBridge` talks to Rasa; the
    tests' scripted stand-in (``tests/scripted_bot.py``) answers by rule, in Rasa's formats.
    Every method raises :class:`RasaUnavailable` when the assistant cannot be reached."""

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]: ...

    async def tracker(self, sender: str) -> dict[str, Any]: ...

    async def append_events(self, sender: str, events: list[dict[str, Any]]
                            ) -> dict[str, Any]: ...

    async def set_slot(self, sender: str, name: str, value: object) -> None: ...

    async def record_user_message(self, sender: str, text: str, seq: int) -> None: ...

    async def health(self) -> dict[str, dict[str, Any]]: ...


class RasaBridge:
    """One aiohttp session to Rasa and the action server."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rasa_url: str,
        action_url: str,
        token: str | None,
        timeout: float,
    ) -> None:
        self._session = session
        self._rasa_url = rasa_url
        self._action_url = action_url
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        """Send one shopper message to Rasa's REST webhook and return its replies.

        Raises :class:`RasaUnavailable` when Rasa cannot be reached or fails.
        """
        body = {"sender": sender, "message": text, "metadata": metadata}
        replies: list[Any] = await self._api("POST", "/webhooks/rest/webhook", body, {})
        return replies

    async def tracker(self, sender: str) -> dict[str, Any]:
        """The conversation's tracker (events and slots) from Rasa's HTTP API."""
        tracker: dict[str, Any] = await self._api("GET", f"/conversations/{sender}/tracker", None,
                               {"include_events": "ALL"})
        return tracker

    async def parse(self, text: str) -> dict[str, Any]:
        """What the NLU makes of ``text``, without running the dialogue."""
        parsed: dict[str, Any] = await self._api("POST", "/model/parse", {"text": text}, {})
        return parsed

    async def append_events(self, sender: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Add events to the tracker without predicting anything (no bot reply); the
        tracker's state after them, without its events (Rasa would send them all)."""
        state: dict[str, Any] = await self._api(
            "POST", f"/conversations/{sender}/tracker/events", events, {"include_events": "NONE"})
        return state

    async def set_slot(self, sender: str, name: str, value: object) -> None:
        """Set one slot in the conversation's tracker, creating the tracker if need be.

        Rasa stamps an event when it reads the request, then starts the session of a
        new tracker; its SQL tracker store later drops events stamped before the
        session start. So for a tracker that had no message yet the slot is set once
        more, after that session start.
        """
        event = {"event": "slot", "name": name, "value": value}
        state = await self.append_events(sender, [event])
        if not (state.get("latest_message") or {}).get("text"):
            await self.append_events(sender, [event])

    async def record_user_message(self, sender: str, text: str, seq: int) -> None:
        """Put a message the shopper sent to a person into Rasa's tracker as a user event.

        The NLU reading is attached so the tracker stays a faithful record; no
        action runs, so the bot says nothing.
        """
        parse_data = await self.parse(text)
        await self.append_events(sender, [{
            "event": "user", "text": text, "parse_data": parse_data,
            "input_channel": "rest", "metadata": {"seq": seq, "to": "agent"},
        }])

    async def _api(
        self, method: str, path: str, body: object, params: dict[str, str]
    ) -> Any:
        query = {**params, **({"token": self._token} if self._token else {})}
        try:
            async with self._session.request(
                method, f"{self._rasa_url}{path}", json=body, params=query, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}: {detail}")
                return await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise RasaUnavailable(f"Rasa is not reachable: {error!r}") from error

    async def health(self) -> dict[str, dict[str, Any]]:
        """Reachability of Rasa (with its loaded model) and of the action server."""
        rasa, actions = await asyncio.gather(self._rasa_health(), self._action_health())
        return {"rasa": rasa, "action_server": actions}

    async def _rasa_health(self) -> dict[str, Any]:
        params = {"token": self._token} if self._token else {}
        result = await self._get_json(f"{self._rasa_url}/status", params)
        if not result["ok"]:
            return result
        model = (result.pop("body") or {}).get("model_id")
        if not model:
            return {"ok": False, "detail": "Rasa is up but has no model loaded"}
        return {"ok": True, "model": model}

    async def _action_health(self) -> dict[str, Any]:
        result = await self._get_json(f"{self._action_url}/health", {})
        result.pop("body", None)
        return result

    async def _get_json(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with self._session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                if response.status != 200:
                    return {"ok": False, "detail": f"HTTP {response.status}"}
                return {"ok": True, "body": await response.json()}
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            return {"ok": False, "detail": f"not reachable ({type(error).__name__})"}
