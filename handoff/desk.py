"""The live-agent desk's I/O shell: it reads state, stores decided steps, sends frames
and runs the timers.

What to do is decided in :mod:`handoff.decisions` (every change to a handoff) and
:mod:`handoff.routing` (who is on the rota, who gets the next chat, the expected
wait), with no I/O. The desk turns a handoff opened by a bot turn into a queued chat
with its context packet, gives queued chats to the least-busy online agent (or lets
an agent claim one), relays agents' replies, notes and typing, and ends chats by
handing back to the bot or closing with a resolution and a CSAT question. Timers
alert every agent about chats nobody took and offer long-waiting shoppers to leave a
message. Every change is stored (see :mod:`handoff.db.desk`) before any socket hears
of it, so a restarted gateway rebuilds the queue and the assignments from SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.settings import Settings
from handoff import decisions
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
    TicketReply,
    Transfer,
    Typing,
    Unwatch,
    agent_welcome_frame,
    alert_frame,
    assigned_frame,
    console_state,
    note_frame,
    opened_frame,
    reply_ack_frame,
    state_frame,
    unassigned_frame,
)
from handoff.context import build_context
from handoff.db.agents import Agent, AgentStore
from handoff.db.conversations import Change, ConversationStore, Statement
from handoff.db.desk import DeskStore
from handoff.db.mail import MailOutbox, MailStore
from handoff.exceptions import ProtocolError, RasaUnavailable
from handoff.handoff_states import Handoff, Step, Webhook
from handoff.hub import AgentView, Hub, Subscriber
from handoff.mail import Mailer
from handoff.protocol import pong_frame, typing_frame
from handoff.rasa_bridge import Bot
from handoff.routing import Rota, estimate_wait, handle_time, pick_agent, priority_for
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
        mailer: Mailer | None = None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.mailer = mailer
        if mailer is not None:
            mailer.on_change = self._changed  # consoles show mail pending or failed
        self.hub = hub
        self.bridge = bridge
        self.settings = settings
        self.canned = canned
        self.desk = DeskStore(store)
        self.accounts = AgentStore(store)
        self.rota = Rota()
        self._connections: dict[str, set[AgentConnection]] = defaultdict(set)
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

    # -- storing and announcing decided steps ---------------------------------

    def _apply(self, step: Step) -> Change | None:
        """Store a step with its webhook rows in one transaction, then send its events on
        and wake the webhook sender. ``None``: its move's rule no longer held."""
        change = self.desk.apply(step, self._outbox(step.webhook))
        self._announce(step.handoff.conversation_id, change)
        return change

    def _outbox(self, webhook: Webhook | None) -> list[Statement]:
        """The webhook rows telling the shop's systems about a change, to be written in the
        change's own transaction (:meth:`_announce` then wakes the sender)."""
        if self.webhooks is None or webhook is None:
            return []
        return self.webhooks.rows(webhook.event, webhook.data)

    def _announce(self, conversation_id: str, change: Change | None) -> None:
        """Send a stored change's events on; its webhook rows (if any) go out now too."""
        if change is not None and change.new:
            self.hub.publish(conversation_id, change.events)
            if self.webhooks is not None:
                self.webhooks.wake()

    # -- handoffs from the bot --------------------------------------------

    async def on_handoff(self, conversation_id: str) -> None:
        """A bot turn opened a handoff: build the context and queue the chat."""
        for handoff in self.desk.new():
            if handoff.conversation_id == conversation_id:
                await self._open_handoff(handoff)

    async def _open_handoff(self, handoff: Handoff) -> None:
        conversation = await self.hub.conversations.get(handoff.conversation_id)
        if conversation is None:
            return
        if not self.rota.online() and time.time() < self._reconnect_until:
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
            await self.hub.conversations.events_after(handoff.conversation_id, 0),
            tracker,
            conversation.page,
            {"reason": handoff.reason, "trigger": handoff.trigger},
            customer_id=conversation.customer_id,
            lang=conversation.lang,
        )
        priority = priority_for(conversation.page, handoff.trigger)
        staffed = bool(self.rota.online())
        change = self._apply(decisions.open_handoff(
            handoff, context, priority, staffed=staffed, page=conversation.page,
            customer_id=conversation.customer_id, support_email=self.settings.support_email,
            now=time.time()))
        if change is None:
            return  # opened meanwhile by another task (a reconnect and a timer, say)
        log.info("conversation=%s handoff=%s %s (trigger %s, priority %s)",
                 handoff.conversation_id, handoff.id, "queued" if staffed else "unstaffed",
                 handoff.trigger, priority)
        if staffed:
            self._alert(decisions.Alert("queued", handoff, "A shopper is waiting for a person."))
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

    # -- routing ------------------------------------------------------------

    def dispatch(self) -> None:
        """Give queued chats, best first, to free online agents while there are any."""
        if self._held and self.rota.online():
            self._open_held()  # queued (and dispatched) once their context is built
        if not self.settings.queue_auto_assign:
            self._changed()
            return
        for handoff in self.desk.queued():
            choice = pick_agent(self.rota.loads(self.desk.loads()), handoff.lang)
            if choice is None:
                break
            self._assign(handoff, self.rota.agents[choice.id])
        self._changed()

    def _assign(self, handoff: Handoff, agent: Agent) -> bool:
        return self._assigned(decisions.assign(handoff, agent, time.time()), agent)

    def _assigned(self, step: Step, agent: Agent) -> bool:
        """Store an assignment and tell the agent (and those who only looked at the chat)."""
        handoff = step.handoff
        if self._apply(step) is None:
            return False
        self.rota.assigned(agent.id, time.time())
        self._positions.pop(handoff.conversation_id, None)
        self._send_chat(agent.id, handoff.id)
        self._drop_other_views(handoff.conversation_id, keep=agent.id)
        log.info("conversation=%s handoff=%s assigned to %s", handoff.conversation_id,
                 handoff.id, agent.id)
        return True

    def _send_chat(self, agent_id: str, handoff_id: int) -> None:
        """The ``assigned`` frame: a chat (with its context packet) is the agent's now."""
        handoff = self.desk.get(handoff_id)
        assert handoff is not None
        self._send_to(agent_id, assigned_frame(handoff.conversation_id, handoff.summary(),
                                               handoff.context))

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
        self.rota.join(agent)
        self._connections[agent.id].add(connection)
        timer = self._offline_timers.pop(agent.id, None)
        if timer is not None:
            timer.cancel()
        connection.send(agent_welcome_frame(
            _agent_info(agent), self.rota.presence_of(agent.id),
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
        self.rota.leave(agent_id)
        agent = self.rota.agents.get(agent_id) or self.accounts.get(agent_id)
        name = agent.name if agent else "Our team member"
        for handoff in self.desk.assigned(agent_id):
            if self._apply(decisions.requeue(handoff, agent_id, name)) is not None:
                log.info("conversation=%s handoff=%s requeued: agent %s went offline",
                         handoff.conversation_id, handoff.id, agent_id)
        log.info("agent=%s offline", agent_id)
        self.dispatch()

    def _send_to(self, agent_id: str, frame: dict[str, Any]) -> None:
        for connection in self._connections.get(agent_id, ()):
            connection.send(frame)

    def _alert(self, alert: decisions.Alert) -> None:
        """Tell every signed-in agent (online or away): the console beeps and notifies."""
        self._tell_everyone(alert_frame(alert.kind, alert.handoff.conversation_id,
                                        alert.handoff.id, alert.text))

    def _tell_everyone(self, frame: dict[str, Any]) -> None:
        for connections in self._connections.values():
            for connection in connections:
                connection.send(frame)

    # -- what agents do ---------------------------------------------------------

    async def handle(self, connection: AgentConnection, frame: AgentFrame) -> None:
        agent = connection.agent
        if isinstance(frame, AgentPing):
            connection.send(pong_frame())
        elif isinstance(frame, Presence):
            self.rota.set(agent.id, frame.status)
            self.dispatch()
        elif isinstance(frame, Open):
            await self._open_view(connection, frame.conversation_id, frame.last_seq)
        elif isinstance(frame, Unwatch):
            view = connection.views.pop(frame.conversation_id, None)
            if view is not None:
                self.hub.unsubscribe(frame.conversation_id, view)
        elif isinstance(frame, Claim):
            self._claim(agent, frame.conversation_id)
        elif isinstance(frame, Reply):
            self._reply(connection, frame)
        elif isinstance(frame, Typing):
            decisions.owned(agent, self.desk.current(frame.conversation_id))
            self.hub.signal(frame.conversation_id, typing_frame(frame.on, "agent"), "shopper")
        elif isinstance(frame, Transfer):
            self._transfer(agent, frame.conversation_id, frame.agent_id)
        elif isinstance(frame, Handback | Close):
            await self._end(agent, frame)
        elif isinstance(frame, TicketReply):
            self._answer_ticket(connection, frame)
        elif isinstance(frame, TicketDone):
            if not self.desk.close_ticket(frame.ticket_id):
                raise ProtocolError("unknown_ticket", "That ticket is already done or unknown.")
            self._changed()
        else:  # Auth after sign-in
            raise ProtocolError("already_authenticated", "This socket is signed in already.")

    async def _open_view(self, connection: AgentConnection, conversation_id: str,
                         last_seq: int) -> None:
        handoff = self.desk.current(conversation_id)
        conversation = await self.hub.conversations.get(conversation_id)
        if conversation is None or not decisions.may_view(
                connection.agent, handoff, open_ticket=self._open_ticket(conversation_id)):
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
        await self.hub.subscribe(conversation_id, view, last_seq)

    def _claim(self, agent: Agent, conversation_id: str) -> None:
        step = decisions.claim(agent, self.desk.current(conversation_id),
                               self.desk.loads().get(agent.id, 0), time.time())
        if not self._assigned(step, agent):
            raise ProtocolError("not_in_queue", "Someone else took this chat a moment ago.")
        self._changed()

    def _reply(self, connection: AgentConnection, frame: Reply) -> None:
        agent = connection.agent
        handoff = self.desk.current(frame.conversation_id)
        if frame.type == "note":
            if not decisions.may_view(agent, handoff,
                                      open_ticket=self._open_ticket(frame.conversation_id)):
                raise ProtocolError("forbidden", "You can only add notes to chats you can open.")
            note, new = self.desk.add_note(
                frame.conversation_id, agent.id, agent.name, frame.client_id, frame.text
            )
            connection.send(reply_ack_frame(frame.conversation_id, frame.client_id, not new,
                                            note_id=note.id))
            if new:
                self.hub.signal(frame.conversation_id, note_frame(note.frame()), "agent")
            return
        change = self._apply(decisions.reply(agent, handoff, frame.client_id, frame.text,
                                             time.time()))
        if change is None:
            raise ProtocolError("not_your_chat", decisions.NOT_YOURS, frame.client_id)
        connection.send(reply_ack_frame(frame.conversation_id, frame.client_id, not change.new,
                                        seq=change.events[0].seq))

    def _open_ticket(self, conversation_id: str) -> bool:
        return any(t.conversation_id == conversation_id for t in self.desk.open_tickets())

    def _answer_ticket(self, connection: AgentConnection, frame: TicketReply) -> None:
        """Answer an offline message by mail: stored in its conversation with the mail."""
        mail = MailStore(self.store)
        answer = decisions.answer_ticket(
            connection.agent, mail.ticket(frame.ticket_id), frame.client_id, frame.text,
            mail_on=self.mailer is not None and self.mailer.enabled)
        assert self.mailer is not None
        change = self.mailer.store_answer(mail, answer, time.time())
        if change is None:
            raise ProtocolError("unknown_ticket", "That ticket is already done or unknown.",
                                frame.client_id)
        conversation_id = answer.ticket.conversation_id
        self._announce(conversation_id, change)
        self.mailer.wake()
        connection.send(reply_ack_frame(conversation_id, frame.client_id, not change.new,
                                        seq=change.events[0].seq))
        self._changed()

    def mail_received(self, conversation_id: str, change: Change, text: str) -> None:
        """A shopper's mail joined a conversation or opened a ticket: consoles following
        it see it live, and every agent is alerted."""
        self._announce(conversation_id, change)
        if change.new:
            handoff = self.desk.current(conversation_id)
            self._tell_everyone(alert_frame("ticket", conversation_id,
                                            handoff.id if handoff else None, text))
            self._changed()

    def _transfer(self, agent: Agent, conversation_id: str, to_agent_id: str) -> None:
        target = self.rota.agents.get(to_agent_id)
        step = decisions.transfer(agent, self.desk.current(conversation_id), target,
                                  self.rota.signed_in(to_agent_id),
                                  self.desk.loads().get(to_agent_id, 0))
        if self._apply(step) is None:
            raise ProtocolError("not_your_chat", decisions.NOT_YOURS)
        self._send_to(agent.id, unassigned_frame(conversation_id, "transferred"))
        self._send_chat(to_agent_id, step.handoff.id)
        self._changed()

    async def _end(self, agent: Agent, frame: Handback | Close) -> None:
        step = decisions.end(agent, self.desk.current(frame.conversation_id), frame)
        if self._apply(step) is None:
            raise ProtocolError("not_your_chat", decisions.NOT_YOURS)
        state = step.move.target
        self._send_to(agent.id, unassigned_frame(frame.conversation_id, state))
        log.info("conversation=%s handoff=%s %s by %s", frame.conversation_id, step.handoff.id,
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
                return decisions.queue_position(handoff, position,
                                                self._expected_waits(position)[-1])
        return None

    def _expected_waits(self, positions: int) -> list[float]:
        """Seconds until the chats at positions 1… are likely taken (``inf``: nobody online)."""
        loads = self.rota.loads(self.desk.loads())
        handle = handle_time(self.desk.handle_times(), self.settings.average_handle_seconds)
        return [estimate_wait(position, loads, handle) for position in range(1, positions + 1)]

    def shopper_typing(self, conversation_id: str, on: bool) -> None:
        self.hub.signal(conversation_id, typing_frame(on, "shopper"), "agent")

    def _shopper_step(self, conversation_id: str, client_id: str,
                      decide: Callable[[Handoff | None], Step]) -> tuple[Change, Step | None]:
        """Make what a shopper's frame asks for, decided on the conversation's latest
        handoff; a client re-sending a frame it sent before gets the first answer back
        (and no step)."""
        event = self.store.client_event(conversation_id, client_id)
        if event is not None:
            return Change([event], new=False), None
        for _ in range(3):
            step = decide(self.desk.current(conversation_id))
            if (change := self._apply(step)) is not None:
                break
            # Another process moved the handoff between the read and the write (in this
            # one nothing runs in between): decide again on the state as it is now.
        else:
            raise RuntimeError(f"{step.move.name} keeps failing its guard on a handoff "
                               "the decision allowed it for")
        self._positions.pop(conversation_id, None)
        self._changed()
        return change, step

    def leave_queue(self, conversation_id: str, client_id: str) -> Change:
        change, _ = self._shopper_step(
            conversation_id, client_id, lambda handoff: decisions.leave_queue(handoff, client_id))
        return change

    def leave_message(
        self, conversation_id: str, client_id: str, email: str, text: str
    ) -> Change:
        change, step = self._shopper_step(
            conversation_id, client_id,
            lambda handoff: decisions.leave_message(handoff, client_id, email, text))
        if step is not None:
            self._alert(decisions.Alert("ticket", step.handoff,
                                        f"New offline message from {email}."))
        return change

    def rate(
        self, conversation_id: str, client_id: str, handoff_id: int, score: int,
        comment: str | None,
    ) -> Change:
        def decide(_: Handoff | None) -> Step:  # the rated chat, not necessarily the latest
            return decisions.rate(self.desk.get(handoff_id), conversation_id, client_id, score,
                                  comment, time.time())
        change, _ = self._shopper_step(conversation_id, client_id, decide)
        return change

    # -- keeping consoles and waiting shoppers up to date ----------------------------

    def _changed(self) -> None:
        """Something the consoles or the waiting shoppers show changed: update them soon."""
        if self._state_handle is None:
            loop = asyncio.get_running_loop()
            self._state_handle = loop.call_later(STATE_DEBOUNCE, self._broadcast)

    def _shared_state(self) -> dict[str, Any]:
        return console_state(
            self.desk.queued(), QUEUE_LIST_LIMIT, self.desk.loads(),
            [(_agent_info(agent), self.rota.presence_of(agent.id))
             for agent in self.accounts.all()],
            self.desk.open_tickets(), time.time(), MailOutbox(self.store).waiting())

    def _state_for(self, agent_id: str, shared: dict[str, Any]) -> dict[str, Any]:
        chats = [h.summary() for h in self.desk.assigned(agent_id)]
        return state_frame(shared, self.rota.presence_of(agent_id), chats)

    def _broadcast(self) -> None:
        self._state_handle = None
        if self._connections:
            shared = self._shared_state()
            for agent_id in list(self._connections):
                self._send_to(agent_id, self._state_for(agent_id, shared))
        queued = self.desk.queued()
        expected = self._expected_waits(len(queued)) if queued else []
        for position, (handoff, seconds) in enumerate(zip(queued, expected, strict=True),
                                                      start=1):
            frame = decisions.queue_position(handoff, position, seconds)
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
        queued = self.desk.queued()
        if not queued:
            return
        # Right after a restart nobody is online until consoles reconnect: not an emergency.
        nobody_online = not self.rota.online() and (
            now - self._started_at >= RECONNECT_WINDOW + self.settings.presence_grace
        )
        for action in decisions.escalations(
            queued, self._expected_waits(len(queued)), now, nobody_online=nobody_online,
            claim_timeout=self.settings.queue_claim_timeout,
            max_wait=self.settings.queue_max_wait, support_email=self.settings.support_email,
        ):
            if isinstance(action, decisions.Alert):
                self.desk.mark_alerted(action.handoff.id)
                self._alert(action)
                self._changed()
            else:
                self._apply(action)


def _agent_info(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "role": agent.role, "capacity": agent.capacity}
