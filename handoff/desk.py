"""The live-agent desk: the queue, routing, what agents do, and the shopper's side of it.

A handoff opened by a bot turn is turned into a queued chat with its context
packet; the desk gives queued chats to the least-busy online agent (or lets an
agent claim one), relays agents' replies, notes and typing, and ends chats by
handing back to the bot or closing with a resolution and a CSAT question.
Timers alert every agent about chats nobody took and offer long-waiting
shoppers to leave a message. Every change is stored (see
:mod:`handoff.db.desk`) before any socket hears of it, so a restarted
gateway rebuilds the queue and the assignments from SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.settings import Settings
from handoff.agent_protocol import (
    AgentFrame,
    AgentPing,
    Claim,
    Close,
    Handback,
    Open,
    Presence,
    Reply,
    TicketDone,
    Transfer,
    Typing,
    Unwatch,
    agent_welcome_frame,
    alert_frame,
    assigned_frame,
    note_frame,
    opened_frame,
    reply_ack_frame,
    state_frame,
    unassigned_frame,
)
from handoff.context import build_context
from handoff.db.agents import Agent, AgentStore
from handoff.db.conversations import Change, ConversationStore, Statement
from handoff.db.desk import DeskStore, Handoff
from handoff.exceptions import ProtocolError, RasaUnavailable
from handoff.handoff_states import HandoffState
from handoff.hub import AgentView, Hub, Subscriber
from handoff.protocol import (
    OfflineReason,
    agent_message,
    csat_received_frame,
    csat_request_frame,
    mode_frame,
    offline_form_frame,
    offline_received_frame,
    pong_frame,
    queue_frame,
    system_message,
    typing_frame,
)
from handoff.rasa_bridge import Bot
from handoff.routing import (
    ONLINE,
    AgentLoad,
    estimate_wait,
    handle_time,
    pick_agent,
    priority_for,
)
from handoff.webhooks import Webhooks

__all__ = ["AgentConnection", "CannedResponse", "Desk", "load_canned"]

log = logging.getLogger("gateway.desk")

#: The queue list sent to consoles is cut here; the total is always sent.
QUEUE_LIST_LIMIT = 200
#: State updates to consoles are gathered for this long and sent once.
STATE_DEBOUNCE = 0.05
#: After a gateway restart, agents get this long (plus the presence grace) to
#: reconnect before their chats go back to the queue, before "nobody is online"
#: escalations start, and before a handoff counts as unstaffed.
RECONNECT_WINDOW = 30.0


class CannedResponse(BaseModel):
    title: str
    text: str


def load_canned(path: Path) -> list[CannedResponse]:
    """Canned responses from a YAML list of ``{title, text}``; problems are logged, not fatal."""
    if not path.exists():
        return []
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        return TypeAdapter(list[CannedResponse]).validate_python(data or [])
    except (YAMLError, ValidationError, OSError) as error:
        log.error("canned responses in %s not loaded: %s", path, error)
        return []


class AgentConnection:
    """One console socket of a signed-in agent, and the conversations it follows."""

    def __init__(self, agent: Agent, socket: Subscriber, expires_at: float) -> None:
        self.agent = agent
        self.socket = socket
        self.expires_at = expires_at
        self.views: dict[str, AgentView] = {}

    def send(self, frame: dict[str, Any]) -> None:
        self.socket.push_control(frame)


class Desk:
    """Queue, routing and agent actions over one gateway's store and hub."""

    def __init__(
        self,
        store: ConversationStore,
        hub: Hub,
        bridge: Bot,
        settings: Settings,
        canned: list[CannedResponse],
        webhooks: Webhooks | None = None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.hub = hub
        self.bridge = bridge
        self.settings = settings
        self.canned = canned
        self.desk = DeskStore(store)
        self.accounts = AgentStore(store)
        self._connections: dict[str, set[AgentConnection]] = defaultdict(set)
        self._agents: dict[str, Agent] = {}
        self._presence: dict[str, str] = {}
        self._last_assigned: dict[str, float] = {}
        self._offline_timers: dict[str, asyncio.TimerHandle] = {}
        self._state_handle: asyncio.TimerHandle | None = None
        self._positions: dict[str, tuple[int, int | None]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._started_at = time.time()
        #: Until then a handoff with nobody online waits for consoles to reconnect (see start).
        self._reconnect_until = self._started_at
        #: Handoffs (ids) waiting for that, and the timer that opens them when it is over.
        self._held: set[int] = set()
        self._release: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        hub.on_handoff = self.on_handoff

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Finish handoffs a previous run opened but did not queue, and start the timers.

        Presence is not stored, so right after a start nobody is online even when
        agents were a moment ago. If any agent still holds a session, their console
        will be back within seconds: until the reconnect window is over, a handoff
        (one a crash cut off before it was queued, or a new one) waits for them
        rather than telling the shopper that nobody is there.
        """
        if self.accounts.anyone_signed_in(self._started_at):
            self._reconnect_until = (
                self._started_at + RECONNECT_WINDOW + self.settings.presence_grace
            )
        for handoff in self.desk.new():
            await self._open_handoff(handoff)
        # Agents who had chats before a restart get time to reconnect; then their chats
        # go back to the queue rather than wait for someone who is not coming back.
        loop = asyncio.get_running_loop()
        for agent_id in {h.agent_id for h in self.desk.assigned() if h.agent_id}:
            self._offline_timers[agent_id] = loop.call_later(
                RECONNECT_WINDOW + self.settings.presence_grace, self._went_offline, agent_id
            )
        self._ticker = asyncio.create_task(self._tick_loop())

    async def close(self) -> None:
        if self._release is not None:
            self._release.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for handle in self._offline_timers.values():
            handle.cancel()
        if self._state_handle is not None:
            self._state_handle.cancel()
        for connections in list(self._connections.values()):
            for connection in list(connections):
                await connection.socket.close()

    # -- handoffs from the bot --------------------------------------------

    async def on_handoff(self, conversation_id: str) -> None:
        """A bot turn opened a handoff: build the context and queue the chat."""
        for handoff in self.desk.new():
            if handoff.conversation_id == conversation_id:
                await self._open_handoff(handoff)

    async def _open_handoff(self, handoff: Handoff) -> None:
        conversation = self.store.get(handoff.conversation_id)
        if conversation is None:
            return
        if not self._online_agents() and time.time() < self._reconnect_until:
            self._hold(handoff)
            return
        tracker: dict[str, Any] | None
        try:
            tracker = await self.bridge.tracker(handoff.conversation_id)
        except RasaUnavailable as error:
            log.warning("conversation=%s context without the tracker: %s",
                        handoff.conversation_id, error)
            tracker = None
        context = build_context(
            handoff.conversation_id,
            self.store.events_after(handoff.conversation_id, 0),
            tracker,
            conversation.page,
            {"reason": handoff.reason, "trigger": handoff.trigger},
            customer_id=conversation.customer_id,
        )
        priority = priority_for(conversation.page, handoff.trigger)
        queued = bool(self._online_agents())
        outbox = self._outbox("conversation.queued", handoff.conversation_id,
                              handoff_id=handoff.id, trigger=handoff.trigger,
                              reason=handoff.reason, priority=priority, staffed=queued,
                              page=conversation.page, customer_id=conversation.customer_id)
        if queued:
            change = self.desk.enqueue(handoff, context, priority, [
                mode_frame("queued", handoff_id=handoff.id),
                system_message("I'm connecting you with a person from our team. They will see this "
                        "whole conversation, so you won't need to repeat anything."),
            ], outbox)
        else:
            change = self.desk.unstaffed(
                handoff, context, priority, self._offline_offer(handoff.id, "no_agents"), outbox
            )
        if change is None:
            return  # opened meanwhile by another task (a reconnect and a timer, say)
        self._announce(handoff.conversation_id, change)
        log.info("conversation=%s handoff=%s %s (trigger %s, priority %s)",
                 handoff.conversation_id, handoff.id, "queued" if queued else "unstaffed",
                 handoff.trigger, priority)
        if queued:
            self._alert("queued", handoff, "A shopper is waiting for a person.")
            self.dispatch()
        else:
            self._changed()

    def _hold(self, handoff: Handoff) -> None:
        """Keep a handoff ``new`` until an agent is online or the reconnect window is over."""
        self._held.add(handoff.id)
        if self._release is None:
            delay = max(0.0, self._reconnect_until - time.time())
            self._release = asyncio.get_running_loop().call_later(delay, self._window_over)
        log.info("conversation=%s handoff=%s waits up to %.0f s for agents to reconnect",
                 handoff.conversation_id, handoff.id, self._reconnect_until - time.time())

    def _window_over(self) -> None:
        self._release = None
        self._open_held()

    def _open_held(self) -> None:
        """Open the held handoffs now (queued if someone is online, else unstaffed)."""
        if not self._held:
            return
        held, self._held = self._held, set()

        async def open_them() -> None:
            for handoff in self.desk.new():
                if handoff.id in held:
                    await self._open_handoff(handoff)

        task = asyncio.create_task(open_them())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _offline_offer(self, handoff_id: int, reason: OfflineReason) -> list[dict[str, Any]]:
        if reason == "no_agents":
            text = ("No one from our team is online right now. Leave your email and a message "
                    "and we'll get back to you, or email us at "
                    f"{self.settings.support_email}. I'm still here if I can help meanwhile.")
        else:
            text = ("It's taking longer than usual to reach someone. You can keep waiting, or "
                    "leave your email and a message and we'll reply by email.")
        return [offline_form_frame(handoff_id, reason), system_message(text)]

    def _announce(self, conversation_id: str, change: Change | None) -> None:
        """Send a stored change's events on; its webhook rows (if any) go out now too."""
        if change is not None and change.new:
            self.hub.publish(conversation_id, change.events)
            if self.webhooks is not None:
                self.webhooks.wake()

    # -- routing ------------------------------------------------------------

    def _online_agents(self) -> list[str]:
        return [a for a, presence in self._presence.items() if presence == ONLINE]

    def _loads(self) -> list[AgentLoad]:
        loads = self.desk.loads()
        return [
            AgentLoad(agent_id, presence, self._agents[agent_id].capacity,
                      loads.get(agent_id, 0), self._last_assigned.get(agent_id, 0.0))
            for agent_id, presence in self._presence.items()
            if agent_id in self._agents
        ]

    def dispatch(self) -> None:
        """Give queued chats, best first, to free online agents while there are any."""
        if self._held and self._online_agents():
            self._open_held()  # queued (and dispatched) once their context is built
        if not self.settings.queue_auto_assign:
            self._changed()
            return
        for handoff in self.desk.queued():
            choice = pick_agent(self._loads())
            if choice is None:
                break
            self._assign(handoff, self._agents[choice.id])
        self._changed()

    def _assign(self, handoff: Handoff, agent: Agent) -> bool:
        change = self.desk.assign(handoff, agent.id, [
            mode_frame("agent", agent_name=agent.name),
            system_message(f"{agent.name} joined the chat."),
        ], self._outbox("conversation.assigned", handoff.conversation_id,
                        handoff_id=handoff.id, agent={"id": agent.id, "name": agent.name}))
        if change is None:
            return False
        self._last_assigned[agent.id] = time.time()
        self._positions.pop(handoff.conversation_id, None)
        self._announce(handoff.conversation_id, change)
        assigned = self.desk.get(handoff.id)
        assert assigned is not None
        self._send_to(agent.id, assigned_frame(handoff.conversation_id, assigned.summary(),
                                               assigned.context))
        self._drop_other_views(handoff.conversation_id, keep=agent.id)
        log.info("conversation=%s handoff=%s assigned to %s", handoff.conversation_id,
                 handoff.id, agent.id)
        return True

    def _drop_other_views(self, conversation_id: str, keep: str) -> None:
        """Agents who looked at a queued chat stop following it once someone else has it."""
        for agent_id, connections in self._connections.items():
            if agent_id == keep:
                continue
            for connection in connections:
                if connection.agent.role == "admin":
                    continue
                view = connection.views.pop(conversation_id, None)
                if view is not None:
                    self.hub.unsubscribe(conversation_id, view)
                    connection.send(unassigned_frame(conversation_id, "taken"))

    # -- agent connections ---------------------------------------------------

    def connect(self, connection: AgentConnection) -> None:
        agent = connection.agent
        self._agents[agent.id] = agent
        self._connections[agent.id].add(connection)
        timer = self._offline_timers.pop(agent.id, None)
        if timer is not None:
            timer.cancel()
        self._presence.setdefault(agent.id, ONLINE)
        connection.send(agent_welcome_frame(
            self._agent_info(agent), self._presence[agent.id],
            [c.model_dump() for c in self.canned], connection.expires_at))
        connection.send(self._state_for(agent.id, self._shared_state()))
        log.info("agent=%s connected (%d sockets)", agent.id, len(self._connections[agent.id]))
        self.dispatch()

    def disconnect(self, connection: AgentConnection) -> None:
        agent_id = connection.agent.id
        for conversation_id, view in connection.views.items():
            self.hub.unsubscribe(conversation_id, view)
        connection.views.clear()
        connections = self._connections.get(agent_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[agent_id]
                delay = self.settings.presence_grace
                loop = asyncio.get_running_loop()
                self._offline_timers[agent_id] = loop.call_later(
                    delay, self._went_offline, agent_id
                )

    def _went_offline(self, agent_id: str) -> None:
        """The agent's last socket closed a grace period ago: off the rota, chats requeued."""
        self._offline_timers.pop(agent_id, None)
        if agent_id in self._connections:
            return
        self._presence.pop(agent_id, None)
        agent = self._agents.get(agent_id) or self.accounts.get(agent_id)
        name = agent.name if agent else "Our team member"
        for handoff in self.desk.assigned(agent_id):
            change = self.desk.requeue(handoff, agent_id, [
                mode_frame("queued", handoff_id=handoff.id),
                system_message(f"{name} got disconnected. I'm connecting you with someone else "
                        "from the team; they will see the whole conversation."),
            ])
            self._announce(handoff.conversation_id, change)
            if change is not None:
                log.info("conversation=%s handoff=%s requeued: agent %s went offline",
                         handoff.conversation_id, handoff.id, agent_id)
        log.info("agent=%s offline", agent_id)
        self.dispatch()

    def _agent_info(self, agent: Agent) -> dict[str, Any]:
        return {"id": agent.id, "name": agent.name, "role": agent.role,
                "capacity": agent.capacity}

    def _send_to(self, agent_id: str, frame: dict[str, Any]) -> None:
        for connection in self._connections.get(agent_id, ()):
            connection.send(frame)

    def _alert(self, kind: str, handoff: Handoff, text: str) -> None:
        """Tell every signed-in agent (online or away): the console beeps and notifies."""
        frame = alert_frame(kind, handoff.conversation_id, handoff.id, text)
        for connections in self._connections.values():
            for connection in connections:
                connection.send(frame)

    # -- what agents do ---------------------------------------------------------

    async def handle(self, connection: AgentConnection, frame: AgentFrame) -> None:
        agent = connection.agent
        if isinstance(frame, AgentPing):
            connection.send(pong_frame())
        elif isinstance(frame, Presence):
            self._presence[agent.id] = frame.status
            self.dispatch()
        elif isinstance(frame, Open):
            self._open_view(connection, frame.conversation_id, frame.last_seq)
        elif isinstance(frame, Unwatch):
            view = connection.views.pop(frame.conversation_id, None)
            if view is not None:
                self.hub.unsubscribe(frame.conversation_id, view)
        elif isinstance(frame, Claim):
            self._claim(agent, frame.conversation_id)
        elif isinstance(frame, Reply):
            self._reply(connection, frame)
        elif isinstance(frame, Typing):
            self._owned(agent, frame.conversation_id)
            self.hub.signal(frame.conversation_id, typing_frame(frame.on, "agent"), "shopper")
        elif isinstance(frame, Transfer):
            self._transfer(agent, frame.conversation_id, frame.agent_id)
        elif isinstance(frame, Handback | Close):
            await self._end(agent, frame)
        elif isinstance(frame, TicketDone):
            if not self.desk.close_ticket(frame.ticket_id):
                raise ProtocolError("unknown_ticket", "That ticket is already done or unknown.")
            self._changed()
        else:  # Auth after sign-in
            raise ProtocolError("already_authenticated", "This socket is signed in already.")

    def _may_view(self, agent: Agent, handoff: Handoff | None) -> bool:
        if agent.role == "admin":
            return True
        if handoff is None:
            return False
        return handoff.state == HandoffState.QUEUED or (
            handoff.state == HandoffState.ASSIGNED and handoff.agent_id == agent.id
        ) or (handoff.agent_id == agent.id
              and handoff.state in (HandoffState.CLOSED, HandoffState.RETURNED))

    def _open_view(self, connection: AgentConnection, conversation_id: str, last_seq: int) -> None:
        handoff = self.desk.current(conversation_id)
        conversation = self.store.get(conversation_id)
        if conversation is None or not self._may_view(connection.agent, handoff):
            raise ProtocolError(
                "forbidden", "You can open chats in the queue and chats assigned to you."
            )
        old = connection.views.pop(conversation_id, None)
        if old is not None:
            self.hub.unsubscribe(conversation_id, old)
        connection.send(opened_frame(
            conversation_id, conversation.mode, conversation.last_seq,
            handoff.summary() if handoff else None, handoff.context if handoff else None,
            [n.frame() for n in self.desk.notes(conversation_id)]))
        view = AgentView(connection.socket, conversation_id, last_seq)
        connection.views[conversation_id] = view
        self.hub.subscribe(conversation_id, view, last_seq)

    def _owned(self, agent: Agent, conversation_id: str) -> Handoff:
        handoff = self.desk.current(conversation_id)
        if (handoff is None or handoff.state != HandoffState.ASSIGNED
                or handoff.agent_id != agent.id):
            raise ProtocolError("not_your_chat", "This chat is not assigned to you (any more).")
        return handoff

    def _claim(self, agent: Agent, conversation_id: str) -> None:
        handoff = self.desk.current(conversation_id)
        if handoff is None or handoff.state != HandoffState.QUEUED:
            raise ProtocolError(
                "not_in_queue", "This chat is not waiting any more: someone took it, or the "
                "shopper left."
            )
        if self.desk.loads().get(agent.id, 0) >= agent.capacity:
            raise ProtocolError(
                "at_capacity", f"You already have {agent.capacity} chats; close one first."
            )
        if not self._assign(handoff, agent):
            raise ProtocolError("not_in_queue", "Someone else took this chat a moment ago.")
        self._changed()

    def _reply(self, connection: AgentConnection, frame: Reply) -> None:
        agent = connection.agent
        if frame.type == "note":
            handoff = self.desk.current(frame.conversation_id)
            if not self._may_view(agent, handoff):
                raise ProtocolError("forbidden", "You can only add notes to chats you can open.")
            note, new = self.desk.add_note(
                frame.conversation_id, agent.id, agent.name, frame.client_id, frame.text
            )
            connection.send(reply_ack_frame(frame.conversation_id, frame.client_id, not new,
                                            note_id=note.id))
            if new:
                self.hub.signal(frame.conversation_id, note_frame(note.frame()), "agent")
            return
        handoff = self._owned(agent, frame.conversation_id)
        change = self.desk.agent_reply(
            handoff, agent.id, f"agent:{agent.id}:{frame.client_id}",
            agent_message(agent.name, frame.text),
        )
        if change is None:
            raise ProtocolError("not_your_chat", "This chat is not assigned to you (any more).",
                                frame.client_id)
        connection.send(reply_ack_frame(frame.conversation_id, frame.client_id, not change.new,
                                        seq=change.events[0].seq))
        self._announce(frame.conversation_id, change)

    def _transfer(self, agent: Agent, conversation_id: str, to_agent_id: str) -> None:
        handoff = self._owned(agent, conversation_id)
        target = self._agents.get(to_agent_id)
        if target is None or to_agent_id not in self._presence or to_agent_id == agent.id:
            raise ProtocolError(
                "unknown_agent", "Transfer to an agent who is signed in (online or away)."
            )
        if self.desk.loads().get(target.id, 0) >= target.capacity:
            raise ProtocolError("at_capacity", f"{target.name} has no free seat right now.")
        change = self.desk.transfer(handoff, agent.id, target.id, [
            mode_frame("agent", agent_name=target.name),
            system_message(f"{agent.name} passed the chat to {target.name}."),
        ])
        if change is None:
            raise ProtocolError("not_your_chat", "This chat is not assigned to you (any more).")
        self._announce(conversation_id, change)
        self._send_to(agent.id, unassigned_frame(conversation_id, "transferred"))
        moved = self.desk.get(handoff.id)
        assert moved is not None
        self._send_to(target.id, assigned_frame(conversation_id, moved.summary(), moved.context))
        self._changed()

    async def _end(self, agent: Agent, frame: Handback | Close) -> None:
        handoff = self._owned(agent, frame.conversation_id)
        if isinstance(frame, Close):
            state, resolution = HandoffState.CLOSED, frame.resolution
            frames = [
                mode_frame("bot"),
                system_message(f"{agent.name} closed the chat. Thanks for contacting us!"),
                csat_request_frame(handoff.id, agent.name, f"How did {agent.name} do? Rate "
                                   "the help you got from 1 to 5."),
            ]
        else:
            state, resolution = HandoffState.RETURNED, None
            frames = [
                mode_frame("bot"),
                system_message(f"{agent.name} handed you back to the assistant. Ask me "
                               "anything, or ask for a person again at any time."),
            ]
        change = self.desk.end(handoff, agent.id, state, resolution, frames, self._outbox(
            "conversation.closed", frame.conversation_id, handoff_id=handoff.id, outcome=state,
            resolution=resolution, agent={"id": agent.id, "name": agent.name}))
        if change is None:
            raise ProtocolError("not_your_chat", "This chat is not assigned to you (any more).")
        self._announce(frame.conversation_id, change)
        self._send_to(agent.id, unassigned_frame(frame.conversation_id, state))
        log.info("conversation=%s handoff=%s %s by %s", frame.conversation_id, handoff.id,
                 state, agent.id)
        self.dispatch()
        try:
            # The bot picks up where it left off, without its offer of a person pending.
            await self.bridge.append_events(
                frame.conversation_id,
                [{"event": "slot", "name": "human_offered", "value": False}],
            )
        except RasaUnavailable as error:
            log.warning("conversation=%s tracker not updated on %s: %s",
                        frame.conversation_id, state, error)

    # -- what shoppers do around a handoff ---------------------------------------

    def queue_status(self, conversation_id: str) -> dict[str, Any] | None:
        """The ``queue`` control frame for a waiting shopper (position and expected wait)."""
        queued = self.desk.queued()
        for position, handoff in enumerate(queued, start=1):
            if handoff.conversation_id == conversation_id:
                return self._queue_frame(handoff, position)
        return None

    def _expected_waits(self, positions: int) -> list[float]:
        """Seconds until the chats at positions 1… are likely taken (``inf``: nobody online)."""
        loads = self._loads()
        handle = handle_time(self.desk.handle_times(), self.settings.average_handle_seconds)
        return [estimate_wait(position, loads, handle) for position in range(1, positions + 1)]

    def _queue_frame(self, handoff: Handoff, position: int) -> dict[str, Any]:
        seconds = self._expected_waits(position)[-1]
        wait = None if math.isinf(seconds) else int(math.ceil(seconds / 10) * 10)
        return queue_frame(handoff.id, position, wait)

    def shopper_typing(self, conversation_id: str, on: bool) -> None:
        self.hub.signal(conversation_id, typing_frame(on, "shopper"), "agent")

    def _repeat(self, conversation_id: str, client_id: str) -> Change | None:
        """A client re-sending a frame it sent before gets the first answer back."""
        event = self.store.client_event(conversation_id, client_id)
        return None if event is None else Change([event], new=False)

    def leave_queue(self, conversation_id: str, client_id: str) -> Change:
        if (repeat := self._repeat(conversation_id, client_id)) is not None:
            return repeat
        handoff = self.desk.current(conversation_id)
        change = None
        if handoff is not None and handoff.state == HandoffState.QUEUED:
            change = self.desk.leave(handoff, client_id, [
                mode_frame("bot"),
                system_message("OK, you're back with the assistant. Ask for a person again "
                               "any time."),
            ])
        if change is None:
            raise ProtocolError("not_in_queue", "You are not waiting for a person.", client_id)
        self._positions.pop(conversation_id, None)
        self._announce(conversation_id, change)
        self._changed()
        return change

    def leave_message(
        self, conversation_id: str, client_id: str, email: str, text: str
    ) -> Change:
        if (repeat := self._repeat(conversation_id, client_id)) is not None:
            return repeat
        handoff = self.desk.current(conversation_id)
        if handoff is None or handoff.state not in (HandoffState.QUEUED, HandoffState.UNSTAFFED):
            raise ProtocolError(
                "no_offline_form",
                "Leaving a message is offered when nobody from the team can take the chat.",
                client_id,
            )
        frames: list[dict[str, Any]] = [
            offline_received_frame(handoff.id, email),
            system_message(f"Thanks! We have your message and will reply to {email}."),
        ]
        if handoff.state == HandoffState.QUEUED:
            frames.insert(0, mode_frame("bot"))
        change = self.desk.leave_message(
            conversation_id, handoff, client_id, email, text, frames,
            self._outbox("ticket.created", conversation_id, handoff_id=handoff.id, email=email,
                         message=text),
        )
        assert change is not None  # the handoff was queued or unstaffed just now
        if change.new:
            self._positions.pop(conversation_id, None)
            self._announce(conversation_id, change)
            self._alert("ticket", handoff, f"New offline message from {email}.")
            self._changed()
        return change

    def rate(
        self, conversation_id: str, client_id: str, handoff_id: int, score: int,
        comment: str | None,
    ) -> Change:
        if (repeat := self._repeat(conversation_id, client_id)) is not None:
            return repeat
        handoff = self.desk.get(handoff_id)
        change = None
        if handoff is not None and handoff.conversation_id == conversation_id:
            change = self.desk.rate(handoff, client_id, score, comment, [
                csat_received_frame(handoff.id, score),
                system_message("Thank you for your feedback!"),
            ], self._outbox("csat.received", conversation_id, handoff_id=handoff_id,
                            score=score, comment=comment))
        if change is None:
            raise ProtocolError(
                "csat_not_expected", "This chat was not closed by an agent, or it is rated "
                "already.", client_id,
            )
        self._announce(conversation_id, change)
        return change

    def _outbox(self, event: str, conversation_id: str, **data: Any
                ) -> list[Statement]:
        """The webhook rows telling the shop's systems about a change, to be written in the
        change's own transaction (:meth:`_announce` then wakes the sender)."""
        if self.webhooks is None:
            return []
        return self.webhooks.rows(event, {"conversation_id": conversation_id, **data})

    # -- keeping consoles and waiting shoppers up to date ----------------------------

    def _changed(self) -> None:
        """Something the consoles or the waiting shoppers show changed: update them soon."""
        if self._state_handle is None:
            loop = asyncio.get_running_loop()
            self._state_handle = loop.call_later(STATE_DEBOUNCE, self._broadcast)

    def _shared_state(self) -> dict[str, Any]:
        now = time.time()
        queued = self.desk.queued()
        loads = self.desk.loads()
        queue = []
        for position, handoff in enumerate(queued[:QUEUE_LIST_LIMIT], start=1):
            queue.append({**handoff.summary(), "position": position,
                          "waited": round(now - handoff.queued_at, 1)})
        agents = [
            {**self._agent_info(agent), "presence": self._presence.get(agent.id, "offline"),
             "load": loads.get(agent.id, 0)}
            for agent in self.accounts.all()
        ]
        tickets = [
            {"id": t.id, "conversation_id": t.conversation_id, "email": t.email,
             "message": t.message, "created_at": t.created_at}
            for t in self.desk.open_tickets()
        ]
        return {"queue": queue, "queue_total": len(queued), "agents": agents,
                "tickets": tickets}

    def _state_for(self, agent_id: str, shared: dict[str, Any]) -> dict[str, Any]:
        chats = [h.summary() for h in self.desk.assigned(agent_id)]
        return state_frame(shared, self._presence.get(agent_id, "offline"), chats)

    def _broadcast(self) -> None:
        self._state_handle = None
        if self._connections:
            shared = self._shared_state()
            for agent_id in list(self._connections):
                self._send_to(agent_id, self._state_for(agent_id, shared))
        for position, handoff in enumerate(self.desk.queued(), start=1):
            frame = self._queue_frame(handoff, position)
            key = (frame["position"], frame["wait_seconds"])
            if self._positions.get(handoff.conversation_id) != key:
                self._positions[handoff.conversation_id] = key
                self.hub.signal(handoff.conversation_id, frame, "shopper")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue_tick)
            try:
                self.tick(time.time())
            except Exception:  # a bad tick must not stop the timers for good
                log.exception("queue timers failed")

    def tick(self, now: float) -> None:
        """Escalate chats nobody takes: alert everyone, then offer the message form."""
        # Right after a restart nobody is online until consoles reconnect: not an emergency.
        nobody_online = not self._online_agents() and (
            now - self._started_at >= RECONNECT_WINDOW + self.settings.presence_grace
        )
        queued = self.desk.queued()
        expected = self._expected_waits(len(queued)) if queued else []
        for position, handoff in enumerate(queued, start=1):
            waited = now - handoff.queued_at
            if handoff.alerted_at is None and waited >= self.settings.queue_claim_timeout:
                self.desk.mark_alerted(handoff.id)
                self._alert("unclaimed", handoff,
                            f"A shopper has waited {int(waited)} s and nobody took the chat.")
                self._changed()
            if handoff.offline_offered_at is None and (
                nobody_online or waited >= self.settings.queue_max_wait
                # Or the queue says it will take that long: no need to wait to find out
                # (no estimate with nobody online: that case is the one above).
                or (math.isfinite(expected[position - 1])
                    and expected[position - 1] >= self.settings.queue_max_wait)
            ):
                reason: OfflineReason = "no_agents" if nobody_online else "long_wait"
                change = self.desk.offer_offline(handoff, self._offline_offer(handoff.id, reason))
                self._announce(handoff.conversation_id, change)
