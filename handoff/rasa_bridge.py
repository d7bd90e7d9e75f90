"""Talking to Rasa (REST webhook and HTTP API) and to the action server, over loopback;
to several Rasa servers in turn when there are replicas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bot.cards import parse_card
from bot.escalation import parse_handoff
from handoff.exceptions import RasaUnavailable

__all__ = ["Bot", "RasaBridge", "Replica", "replies_to_frames"]

log = logging.getLogger("gateway.rasa")

#: Seconds a /healthz probe waits for Rasa's /status and the action server's /health.
PROBE_TIMEOUT = 2.0
#: Seconds the background check of a replica waits: longer, since a replica busy with
#: turns answers /status late (on a loaded machine, over 2 s) and is not down for it.
CHECK_TIMEOUT = 5.0


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


@dataclass
class Replica:
    """One Rasa server and its action server, as the bridge last found them."""

    rasa_url: str
    action_url: str
    #: False from a request that could not reach it, or a failed health check, until a
    #: health check finds Rasa with a model and the action server up again; None until
    #: the first check (it is tried meanwhile).
    healthy: bool | None = None
    #: Why it is left out.
    detail: str = ""
    #: The model id it had loaded at the last check.
    model: str | None = None
    #: Requests sent to it (answered or not), shown in /healthz.
    requests: int = 0


class RasaBridge:
    """One aiohttp session to Rasa and the action server; with several Rasa servers
    (replicas sharing their trackers through Postgres and their locks through Redis),
    each request goes to the next healthy one in turn.

    The gateway never has two turns of one conversation in flight (the hub's turn lock),
    so spreading requests across replicas never runs one conversation on two of them
    at once. A replica that cannot be reached (connection refused or dropped: it
    answered nothing) is taken out at once and the request goes to the next one; a
    timeout is not retried elsewhere, since the slow replica may still be running that
    turn. With more than one replica, :meth:`start` checks each every
    ``health_interval`` seconds and takes back those that answer again, and
    :meth:`health` reports what the last checks found.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rasa_urls: Sequence[str],
        action_urls: Sequence[str],
        token: str | None,
        timeout: float,
        health_interval: float = 2.0,
    ) -> None:
        if not rasa_urls or len(action_urls) != len(rasa_urls):
            raise ValueError("RasaBridge needs one action server URL per Rasa URL")
        self._session = session
        self.replicas = [Replica(rasa, action) for rasa, action in zip(rasa_urls, action_urls,
                                                                        strict=True)]
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._health_interval = health_interval
        self._turn = itertools.count()
        self._checker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Check the replicas' health in the background (only with more than one: a
        single Rasa is always tried, so there is nothing to choose)."""
        if len(self.replicas) > 1 and self._checker is None:
            self._checker = asyncio.create_task(self._check_forever())

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None

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

    def _pick(self, tried: Sequence[Replica]) -> Replica:
        """The next healthy replica not yet tried; when none is healthy, the next untried
        one all the same (a replica may be back before its health check says so).
        ``tried`` must leave one out."""
        start = next(self._turn)
        order = [self.replicas[(start + i) % len(self.replicas)]
                 for i in range(len(self.replicas))]
        untried = [replica for replica in order if replica not in tried]
        return next((r for r in untried if r.healthy is not False), untried[0])

    async def _api(
        self, method: str, path: str, body: object, params: dict[str, str]
    ) -> Any:
        tried: list[Replica] = []
        for _ in self.replicas:
            replica = self._pick(tried)
            tried.append(replica)
            try:
                return await self._request(replica, method, path, body, params)
            except _Unreachable as error:
                self._set_health(replica, False, f"not reachable ({error.reason})")
                reason = error.reason
        raise RasaUnavailable(f"Rasa is not reachable: {reason}")

    async def _request(self, replica: Replica, method: str, path: str, body: object,
                       params: dict[str, str]) -> Any:
        query = {**params, **({"token": self._token} if self._token else {})}
        replica.requests += 1
        try:
            async with self._session.request(
                method, f"{replica.rasa_url}{path}", json=body, params=query,
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}: {detail}")
                return await response.json()
        except TimeoutError as error:  # before ClientError: aiohttp's timeouts are both
            raise RasaUnavailable(f"Rasa is not reachable: {error!r}") from error
        except aiohttp.ClientConnectionError as error:
            raise _Unreachable(f"{type(error).__name__}: {error}") from error
        except (aiohttp.ClientError, ValueError) as error:
            raise RasaUnavailable(f"Rasa is not reachable: {error!r}") from error

    def _set_health(self, replica: Replica, healthy: bool, detail: str = "") -> None:
        if healthy != replica.healthy and len(self.replicas) > 1:
            if replica.healthy is None:
                log.info("rasa replica %s %s", replica.rasa_url,
                         "is up" if healthy else f"is not up yet: {detail}")
            elif healthy:
                log.info("rasa replica %s is back", replica.rasa_url)
            else:
                log.warning("rasa replica %s left out: %s", replica.rasa_url, detail)
        replica.healthy, replica.detail = healthy, detail

    async def _check(self, replica: Replica, timeout: float) -> tuple[dict[str, Any],
                                                                      dict[str, Any]]:
        """Rasa's and the action server's answers; the replica marked by them."""
        rasa, actions = await asyncio.gather(self._rasa_health(replica, timeout),
                                             self._action_health(replica, timeout))
        replica.model = rasa.get("model")
        failed = next((check for check in (rasa, actions) if not check["ok"]), None)
        self._set_health(replica, failed is None, "" if failed is None else
                         ("action server: " if failed is actions else "") + failed["detail"])
        return rasa, actions

    async def _check_forever(self) -> None:
        while True:
            await asyncio.gather(*(self._check(replica, CHECK_TIMEOUT)
                                   for replica in self.replicas))
            await asyncio.sleep(self._health_interval)

    async def health(self) -> dict[str, dict[str, Any]]:
        """Reachability of Rasa (with its loaded model) and of the action server.

        With several replicas, each under ``rasa.replicas``: a replica that is up as
        the background checks found it last (a busy one is not asked again), one that
        is not is checked now (so it can be taken back); ``ok`` while at least one
        replica (Rasa and its action server) is up.
        """
        if len(self.replicas) == 1:
            alone, its_actions = await self._check(self.replicas[0], PROBE_TIMEOUT)
            return {"rasa": alone, "action_server": its_actions}
        await asyncio.gather(*(self._check(replica, PROBE_TIMEOUT) for replica in self.replicas
                               if not replica.healthy or self._checker is None))
        up = [replica for replica in self.replicas if replica.healthy]
        rasa: dict[str, Any] = {"ok": bool(up)}
        if up:
            rasa["model"] = up[0].model
        else:
            rasa["detail"] = "no Rasa replica is up with its action server"
        rasa["replicas"] = [
            {"url": r.rasa_url, "ok": bool(r.healthy),
             **({"model": r.model} if r.healthy else {"detail": r.detail}),
             "requests": r.requests}
            for r in self.replicas]
        actions = {"ok": True} if up else {
            "ok": False, "detail": "no replica has both Rasa and its action server up"}
        return {"rasa": rasa, "action_server": actions}

    async def _rasa_health(self, replica: Replica, timeout: float) -> dict[str, Any]:
        params = {"token": self._token} if self._token else {}
        result = await self._get_json(f"{replica.rasa_url}/status", params, timeout)
        if not result["ok"]:
            return result
        model = (result.pop("body") or {}).get("model_id")
        if not model:
            return {"ok": False, "detail": "Rasa is up but has no model loaded"}
        return {"ok": True, "model": model}

    async def _action_health(self, replica: Replica, timeout: float) -> dict[str, Any]:
        result = await self._get_json(f"{replica.action_url}/health", {}, timeout)
        result.pop("body", None)
        return result

    async def _get_json(self, url: str, params: dict[str, str],
                        timeout: float) -> dict[str, Any]:
        try:
            async with self._session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                if response.status != 200:
                    return {"ok": False, "detail": f"HTTP {response.status}"}
                return {"ok": True, "body": await response.json()}
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            return {"ok": False, "detail": f"not reachable ({type(error).__name__})"}


class _Unreachable(Exception):
    """A request that reached no Rasa (refused, or dropped before any answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
