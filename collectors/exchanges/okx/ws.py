"""One logical OKX WebSocket session: connect, log in, subscribe, keep alive, reconnect; events out.

:class:`OkxWebSocket` drives the sans-I/O layer (``parse_frame``, ``protocol.py``) over ``websockets``' asyncio
client. It keeps a *desired* subscription set and applies it to every physical connection it opens, so a
reconnect (or a planned 64008 reconnect) resubscribes everything. The consumer reads one stream,
:meth:`OkxWebSocket.events`: every parsed event of every frame (pushes, acks, errors, ``Pong``, ``Rejected``)
plus the session events of ``session.py``. Rules (docs/okx.md, "WebSocket session"):

* Keepalive: after ``ping_after_s`` without a frame, send text ``ping``; no frame within ``pong_timeout_s``
  after it means the connection is dead (a silent ``stall``): abort it and reconnect.
* Reconnect with the injected capped, jittered ``backoff`` on any retryable error; every new connection first
  acquires the shared ``connect_limiter`` (OKX allows 3 per second per IP). A permanent error (bad credentials,
  a close code saying our request is wrong) ends the stream: ``Disconnected(will_reconnect=False)``, then
  ``events()`` raises it. The decision is the error tree's (``is_retryable``), never a broad ``except``.
* 64008 notice: make before break. The successor connects, logs in and subscribes; once every arg is acked
  (or ``ack_timeout_s`` passed) the old connection is closed. Pushes of both arrive during the overlap.
* Raw text: with ``raw_frames`` (default) every frame but ``pong`` is preceded by a :class:`RawFrame`
  carrying its exact text and receive time.
* Two ways to consume: :meth:`OkxWebSocket.events` (a queue between the readers and the consumer's task), or
  :meth:`OkxWebSocket.deliver_to`, which hands every event with its frame's text to a plain function on the
  reader's own task: no queue and no task switch per frame (the live manager's hot path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from typing import Final

from websockets.exceptions import ConnectionClosed

from collectors.backoff import backoff as default_backoff
from collectors.errors import CollectorError, TransportError
from collectors.exchanges.okx.codes import error_from_envelope
from collectors.exchanges.okx.events import ErrorEvent, Event, LoggedIn, Notice, Subscribed
from collectors.exchanges.okx.messages import PONG
from collectors.exchanges.okx.parse import FrameParser
from collectors.exchanges.okx.protocol import ChannelArg, Credentials, login_request
from collectors.exchanges.okx.session import (
    CONNECT_KEY,
    LINK_ERRORS,
    Connect,
    Connected,
    Disconnected,
    KeyedLimiter,
    Link,
    RawFrame,
    SessionEvent,
    SubscriptionFailed,
    default_connect,
    error_from_close,
    error_from_transport,
    wall_clock_ms,
)

__all__ = ["Deliver", "OkxWebSocket"]

log = logging.getLogger(__name__)


class _End:
    """The stream ended (closed, or the supervisor stopped)."""


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END: Final = _End()
_Item = SessionEvent | Event | tuple[RawFrame, Event] | _End | _Failure
# deliver_to's consumer: ``(event, text)``, text the exact frame of a parsed event (raw_frames on, not pong)
Deliver = Callable[[SessionEvent | Event, str | bytes | None], None]


class OkxWebSocket:
    """A self-healing session on one OKX WebSocket URL (``/ws/v5/public`` or ``/ws/v5/business``).

    ``clock`` gives epoch ms (``recv_ms``, ``at_ms``); ``backoff`` builds a fresh delay iterator (seconds) and
    is restarted after a connection that delivered frames. Use as ``async with`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        url: str,
        name: str,
        connect_limiter: KeyedLimiter,
        credentials: Credentials | None = None,
        connect: Connect = default_connect,
        clock: Callable[[], int] = wall_clock_ms,
        backoff: Callable[[], Iterator[float]] = default_backoff,
        ping_after_s: float = 5.0,
        pong_timeout_s: float = 3.0,
        login_timeout_s: float = 10.0,
        ack_timeout_s: float = 10.0,
        raw_frames: bool = True,
        queue_size: int = 10_000,
    ) -> None:
        if ping_after_s <= 0 or pong_timeout_s <= 0:
            raise ValueError("ping_after_s and pong_timeout_s must be > 0")
        self.url, self.name = url, name
        self._limiter, self._credentials, self._connect = connect_limiter, credentials, connect
        self._clock, self._backoff = clock, backoff
        self._ping_after_s, self._pong_timeout_s = ping_after_s, pong_timeout_s
        self._login_timeout_s, self._ack_timeout_s = login_timeout_s, ack_timeout_s
        self._raw_frames, self._parse = raw_frames, FrameParser().parse  # the fast path's memo, ours
        self._desired: dict[ChannelArg, None] = {}
        self._links: set[Link] = set()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._terminal: _Item | None = None
        self._finished = False
        self._task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False
        self._count = 0
        self._fatal: CollectorError | None = None
        self._deliver: Deliver | None = None

    # ----------------------------------------------------------------------------------- public interface

    @property
    def subscriptions(self) -> tuple[ChannelArg, ...]:
        """The desired subscription set, in the order it was asked for."""
        return tuple(self._desired)

    def subscribe(self, args: Iterable[ChannelArg]) -> None:
        """Add ``args`` to the desired set; sent now on every live connection, and on every new one."""
        new = tuple(a for a in dict.fromkeys(args) if a not in self._desired)
        self._desired.update(dict.fromkeys(new))
        if new:
            for link in self._live_links():
                link.add_pending(new)
                link.send(("subscribe", new))

    def unsubscribe(self, args: Iterable[ChannelArg]) -> None:
        """Remove ``args`` from the desired set; unsubscribed now on every live connection."""
        gone = tuple(a for a in dict.fromkeys(args) if a in self._desired)
        for arg in gone:
            del self._desired[arg]
        if gone:
            for link in self._live_links():
                link.send(("unsubscribe", gone))

    def resubscribe(self, args: Iterable[ChannelArg]) -> None:
        """Unsubscribe and subscribe ``args`` again (a fresh ``books`` snapshot after a gap); desired ones only."""
        again = tuple(a for a in dict.fromkeys(args) if a in self._desired)
        if again:
            for link in self._live_links():
                link.send(("unsubscribe", again))
                link.add_pending(again)
                link.send(("subscribe", again))

    async def events(self) -> AsyncGenerator[SessionEvent | Event, None]:
        """Every event of the session until :meth:`aclose`; raises the permanent error that stopped it."""
        self._start()
        while not self._finished:
            if self._terminal is not None and self._queue.empty():
                item, self._terminal = self._terminal, None
            else:
                item = await self._queue.get()
            if isinstance(item, tuple):
                yield item[0]
                yield item[1]
                continue
            if isinstance(item, _End | _Failure):
                self._finished = True
                if isinstance(item, _Failure):
                    raise item.error
                return
            yield item

    async def deliver_to(self, deliver: Deliver) -> None:
        """Run the session, calling ``deliver(event, text)`` for every event :meth:`events` would yield (a frame's
        ``RawFrame`` becomes the ``text`` of its event; ``None`` for session events and ``pong``), in order, on
        the reader's task. ``deliver`` must not block; while it runs the connection is not read (back-pressure).
        An exception it raises ends the session and is raised here. Returns after :meth:`aclose`; raises the
        permanent error that stopped the session. Events after this call ends (cancelled) are not delivered.
        Use this or :meth:`events`, not both."""
        self._deliver = deliver
        try:
            self._start()
            if self._task is None:  # closed before it started
                return
            await asyncio.wait({self._task})
        finally:
            self._deliver = None
        task = self._task
        error = None if task.cancelled() else task.exception()
        error = error if error is not None else self._fatal
        if error is not None:
            raise error

    async def aclose(self) -> None:
        """Close every connection (``Disconnected(will_reconnect=False)``) and stop; idempotent."""
        self._closing = True
        for link in list(self._links):
            link.closing, link.live = True, False
            await link.ws.close()
        for link in list(self._links):  # let the readers report, unless the consumer stopped reading
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.ended.wait(), 1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})

    async def __aenter__(self) -> OkxWebSocket:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------- supervision

    def _start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._supervise(), name=f"okx-ws-{self.name}")
            self._task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        error = error if error is not None else self._fatal
        item: _Item = _Failure(error) if error is not None else _END
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._terminal = item  # handed out once the consumer drained the queue

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                self._fatal = await self._keep_connected()
            finally:
                for link in list(self._links):
                    link.ws.transport.abort()  # after cancellation or a fatal error; no-op when closed

    async def _keep_connected(self) -> CollectorError | None:
        """Reconnect until a permanent error, which it returns, or until :meth:`aclose`."""
        delays = self._backoff()
        link: Link | CollectorError | None = None
        while not self._closing:
            if isinstance(link, CollectorError):
                return link
            if link is None:
                opened = await self._open_with_retry(delays)
                if isinstance(opened, CollectorError):
                    return opened
                link = opened
            await link.signal.wait()
            if link.ended.is_set():
                if link.error is not None and not link.error.retryable:
                    return link.error
                if link.healthy:
                    delays = self._backoff()
                await asyncio.sleep(next(delays))
                link = None
                continue
            link = await self._replace(link, delays)
        return None

    async def _replace(self, old: Link, delays: Iterator[float]) -> Link | CollectorError:
        """The 64008 answer: open and subscribe a successor, then close ``old``."""
        log.info("%s: notice on connection %d; planned reconnect", self.name, old.number)
        new = await self._open_with_retry(delays)
        if isinstance(new, CollectorError):
            return new
        try:
            await asyncio.wait_for(new.acked.wait(), self._ack_timeout_s)
        except TimeoutError:
            log.warning(
                "%s: successor %d not fully acked; closing %d anyway", self.name, new.number, old.number
            )
        old.planned = True
        await self._close_link(old)
        return new

    async def _open_with_retry(self, delays: Iterator[float]) -> Link | CollectorError:
        """A subscribed connection, or the permanent error that makes retrying pointless."""
        while True:
            try:
                return await self._open()
            except CollectorError as exc:
                if exc.retryable:
                    delay = next(delays)
                    log.warning("%s: connect failed (%s); retrying in %.2f s", self.name, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                log.error("%s: connect failed for good: %s", self.name, exc)
                await self._put(self._disconnected(self._count, str(exc), will_reconnect=False))
                return exc

    async def _open(self) -> Link:
        await self._limiter.acquire(CONNECT_KEY)
        try:
            ws = await self._connect(self.url)
        except LINK_ERRORS as exc:
            raise error_from_transport(exc, endpoint=self.url) from exc
        self._count += 1
        link = Link(ws, self._count)
        self._links.add(link)
        assert self._tg is not None
        self._tg.create_task(self._read(link))
        self._tg.create_task(link.write_outbox())
        try:
            if self._credentials is not None:
                await self._login(link, self._credentials)
        except CollectorError:
            await self._close_link(link)
            raise
        link.announced = True
        await self._put(Connected(name=self.name, conn_number=link.number, at_ms=self._clock()))
        log.info("%s: connection %d open", self.name, link.number)
        link.live = True
        wanted = tuple(self._desired)
        link.add_pending(wanted)
        if wanted:
            link.send(("subscribe", wanted))
        return link

    async def _login(self, link: Link, credentials: Credentials) -> None:
        link.send(login_request(credentials, now_ms=self._clock()))
        ended: asyncio.Task[None] = asyncio.ensure_future(link.wait_ended())
        try:
            await asyncio.wait(
                {link.login, ended}, timeout=self._login_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
        if link.login.done():
            link.login.result()  # raises the login error
        elif link.ended.is_set():
            raise link.error or TransportError("connection closed during login", endpoint=self.url)
        else:
            raise TransportError(f"no login answer within {self._login_timeout_s} s", endpoint=self.url)

    async def _close_link(self, link: Link) -> None:
        link.closing = True
        link.live = False
        await link.ws.close()
        await link.ended.wait()

    def _live_links(self) -> list[Link]:
        return [link for link in self._links if link.live]

    # ------------------------------------------------------------------------------------- one link

    async def _read(self, link: Link) -> None:
        recv, received, dispatch, clock = link.ws.recv, link.received, self._dispatch, self._clock
        link.watch(self._ping_after_s, self._pong_timeout_s, endpoint=self.url)
        try:
            while True:
                text = await recv()
                received()
                link.healthy = True
                await dispatch(link, text, clock())
        except ConnectionClosed as exc:
            if link.dead is not None:  # no pong: the watchdog aborted the open but dead socket
                link.error = link.dead
            else:
                link.error = None if link.closing else error_from_close(exc, endpoint=self.url)
        except LINK_ERRORS as exc:
            link.error = link.dead or error_from_transport(exc, endpoint=self.url)
        finally:
            link.unwatch()
        await self._link_ended(link)

    async def _dispatch(self, link: Link, text: str | bytes, recv_ms: int) -> None:
        event = self._parse(text, recv_ms=recv_ms)
        raw = self._raw_frames and text != PONG
        deliver = self._deliver
        if deliver is not None:
            deliver(event, text if raw else None)
        else:
            item: _Item = event
            if raw:  # one queue item for the frame's text and its event
                item = (RawFrame(name=self.name, conn_number=link.number, text=text, recv_ms=recv_ms), event)
            queue = self._queue
            if self._closing or queue.full():
                await self._put(item)
            else:
                queue.put_nowait(item)
        if isinstance(event, Subscribed):
            link.settle(ChannelArg(channel=event.channel, inst_id=event.inst_id or ""))
        elif isinstance(event, ErrorEvent):
            await self._on_error(link, event)
        elif isinstance(event, LoggedIn) and not link.login.done():
            link.login.set_result(None)
        elif isinstance(event, Notice):
            link.notice = True
            link.signal.set()

    async def _on_error(self, link: Link, event: ErrorEvent) -> None:
        if self._credentials is not None and not link.login.done():
            link.login.set_exception(error_from_envelope(event.code, event.msg, endpoint=self.url))
            return
        if event.channel is None or event.inst_id is None:
            log.warning("%s: OKX error %s: %s", self.name, event.code, event.msg)
            return
        arg = ChannelArg(channel=event.channel, inst_id=event.inst_id)
        if arg in self._desired or arg in link.pending:
            self._desired.pop(arg, None)
            link.settle(arg)
            await self._put(SubscriptionFailed(name=self.name, arg=arg, code=event.code, message=event.msg))

    async def _link_ended(self, link: Link) -> None:
        link.live = False
        self._links.discard(link)
        link.outbox.put_nowait(None)
        link.ended.set()
        link.signal.set()
        if not link.announced:
            return
        # an end we chose is INFO; only one we did not choose warns (an error if the session gives up)
        if link.planned:
            reason, again = "planned reconnect (64008 notice)", True
            log.info("%s: connection %d closed: %s", self.name, link.number, reason)
        elif link.error is None:
            reason, again = "closed", False
            log.info("%s: connection %d closed (stop)", self.name, link.number)
        else:
            reason, again = str(link.error), link.error.retryable and not self._closing
            level = logging.WARNING if again or self._closing else logging.ERROR
            log.log(level, "%s: connection %d ended: %s", self.name, link.number, reason)
        await self._put(self._disconnected(link.number, reason, will_reconnect=again))

    def _disconnected(self, number: int, reason: str, *, will_reconnect: bool) -> Disconnected:
        return Disconnected(
            name=self.name,
            conn_number=number,
            at_ms=self._clock(),
            reason=reason,
            will_reconnect=will_reconnect,
        )

    async def _put(self, item: _Item) -> None:
        if self._deliver is not None and not isinstance(item, tuple | _End | _Failure):
            self._deliver(item, None)
        elif not self._closing:
            await self._queue.put(item)
        elif not self._queue.full():  # closing: never wait for a consumer that may have stopped
            self._queue.put_nowait(item)
