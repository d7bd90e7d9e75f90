"""A socket's writer (handoff.hub.Subscriber): every frame once and in the order pushed,
also while an earlier write is still under way; an idle socket holds no task; closing
writes what was pushed before it and nothing after; a broken socket takes no more."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiohttp import ClientSession, web

from handoff.db.conversations import StoredEvent
from handoff.hub import Subscriber


class SlowSocket:
    """Stands in for a WebSocketResponse whose every write waits for the network."""

    def __init__(self, *, fail_after: int | None = None) -> None:
        self.closed = False
        self.written: list[dict[str, Any]] = []
        self.writing = 0
        self.fail_after = fail_after

    async def send_json(self, frame: dict[str, Any]) -> None:
        if self.fail_after is not None and len(self.written) >= self.fail_after:
            raise ConnectionResetError("peer went away")
        self.writing += 1
        assert self.writing == 1, "two writes at once on one socket"
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.written.append(frame)
        self.writing -= 1


def subscriber(socket: SlowSocket, last_seq: int = 0) -> Subscriber:
    return Subscriber(cast(web.WebSocketResponse, socket), last_seq)


def event(seq: int) -> StoredEvent:
    return StoredEvent(seq, {"type": "message", "seq": seq})


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_frames_go_out_in_the_order_pushed_even_while_a_write_is_under_way() -> None:
    socket = SlowSocket()
    sub = subscriber(socket, last_seq=2)
    sub.push_event(event(2))  # already there: not sent again
    sub.push_event(event(3))
    sub.push_control({"type": "typing"})
    await asyncio.sleep(0)  # the first write has started and waits
    sub.push_event(event(4))
    sub.push_event(event(3))  # a repeat: not sent again
    sub.push_control({"type": "queue"})
    await settle()
    sub.push_event(event(5))  # after the writer went idle: a new one starts
    await settle()
    assert [f.get("seq", f["type"]) for f in socket.written] == [3, "typing", 4, "queue", 5]
    assert sub.sent_seq == 5


async def test_an_idle_socket_holds_no_task() -> None:
    before = len(asyncio.all_tasks())
    sockets = [SlowSocket() for _ in range(100)]
    subs = [subscriber(s) for s in sockets]
    assert len(asyncio.all_tasks()) == before
    for n, sub in enumerate(subs):
        sub.push_event(event(n + 1))
    assert len(asyncio.all_tasks()) == before + 100  # one writer per socket with frames
    await settle()
    assert len(asyncio.all_tasks()) == before  # and none once they are written
    assert all(len(s.written) == 1 for s in sockets)


async def test_close_writes_what_was_pushed_before_it_and_nothing_after() -> None:
    socket = SlowSocket()
    sub = subscriber(socket)
    sub.push_control({"type": "error", "code": "hello_timeout"})
    sub.push_event(event(1))
    await sub.close()
    assert [f["type"] for f in socket.written] == ["error", "message"]
    sub.push_event(event(2))
    sub.push_control({"type": "typing"})
    await settle()
    assert len(socket.written) == 2
    await sub.close()  # closing twice is harmless


async def test_a_broken_socket_takes_no_more_frames() -> None:
    socket = SlowSocket(fail_after=1)
    sub = subscriber(socket)
    for seq in (1, 2, 3):
        sub.push_event(event(seq))
    await settle()
    assert [f["seq"] for f in socket.written] == [1]
    tasks = len(asyncio.all_tasks())
    sub.push_event(event(4))
    assert len(asyncio.all_tasks()) == tasks  # nothing is started for a dead socket
    closed = SlowSocket()
    closed.closed = True
    gone = subscriber(closed)
    gone.push_event(event(1))
    gone.push_event(event(2))
    await settle()
    assert closed.written == []
    await sub.close()
    await gone.close()


async def test_frames_pushed_together_reach_a_real_socket_in_one_write_and_in_order() -> None:
    """On a real aiohttp websocket over loopback: the frames pushed in one go (a bot
    turn's replies and "stopped typing") go to the kernel in one write, framed as
    separate websocket messages the client reads in order; a frame pushed later is
    a write of its own; nothing is left in the batch buffer."""
    writes: list[bytes] = []
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        real_write = transport.write

        def counting_write(data: bytes | bytearray | memoryview) -> None:
            writes.append(bytes(data))
            real_write(data)

        transport.write = counting_write  # type: ignore[method-assign]
        sub = Subscriber(ws, 0)
        for seq in (1, 2, 3):
            sub.push_event(event(seq))
        sub.push_control({"type": "typing", "on": False})
        await settle()
        sub.push_control({"type": "pong"})
        await sub.close()
        await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/ws"
    try:
        async with ClientSession() as session, session.ws_connect(url) as ws:
            received = [await ws.receive_json(timeout=5) for _ in range(5)]
            done.set()
    finally:
        await runner.cleanup()
    assert [f.get("seq", f["type"]) for f in received] == [1, 2, 3, "typing", "pong"]
    # The four frames pushed together in one write, then the pong in its own (then
    # the close frame).
    assert writes[0].count(b'"type": "message"') == 3 and b'"typing"' in writes[0]
    assert b'"pong"' in writes[1] and b'"message"' not in writes[1]
