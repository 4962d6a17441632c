"""Event delivery: callbacks by type and async iterators, with a generation guard.

Every event the gateway writes (``{"method":"event","params":{"type":T,
"payload":P}}``) and every lifecycle event of the client becomes an
:class:`Event`. :class:`EventBus` hands it to

- callbacks registered with ``on(type, fn)`` (called in order, in the reader
  task: keep them short; an ``async def`` callback is scheduled as a task;
  an exception is logged, never raised into the reader), and
- every :class:`EventStream` whose filter matches (``async for ev in
  gateway.events("process.output")``). A stream buffers what it has not
  consumed yet; it is held weakly by the bus, so a stream the UI dropped is
  collected and stops buffering.

Generation guard: each gateway child has a generation (1, 2, ... per
restart). After a restart, events of an older generation still buffered in
a stream are dropped when they would be yielded: their ``proc`` ids and
state refer to a gateway that no longer exists (the new one counts ``proc``
from 1 again). The client's ``exit`` and ``restart`` events are exempt: they
are about the change itself.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import weakref
from typing import Any, Callable, Deque, Dict, Generic, List, Optional, Set, TypeVar

__all__ = ["Event", "EventStream", "EventBus", "Unsubscribe", "LIFECYCLE_EVENTS"]

log = logging.getLogger("tui_gateway_client")

P = TypeVar("P")

#: Client-side event types that are about a generation change and are
#: therefore delivered even after the next generation started.
LIFECYCLE_EVENTS = frozenset({"exit", "restart"})

Unsubscribe = Callable[[], None]


class Event(Generic[P]):
    """One event: its ``type``, its ``payload`` and the gateway ``generation`` it came from."""

    __slots__ = ("type", "payload", "generation")

    def __init__(self, type: str, payload: P, generation: int) -> None:
        self.type = type
        self.payload = payload
        self.generation = generation

    def __repr__(self) -> str:
        text = repr(self.payload)
        if len(text) > 120:
            text = text[:117] + "..."
        return f"Event({self.type!r}, {text}, generation={self.generation})"


class EventStream(Generic[P]):
    """An async iterator over events, subscribed from the moment it was created.

    Ends (``StopAsyncIteration``) once the gateway is closed for good and
    everything buffered was consumed. Use it as ``async for``, or
    ``async with gateway.events() as stream`` to unsubscribe on exit, or
    ``await stream.next(timeout)``.
    """

    def __init__(self, bus: "EventBus", type_filter: Optional[str]) -> None:
        self._bus = bus
        self._type = type_filter
        self._items: Deque[Event[P]] = collections.deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._ended = False

    @property
    def type_filter(self) -> Optional[str]:
        return self._type

    def __aiter__(self) -> "EventStream[P]":
        return self

    async def __anext__(self) -> Event[P]:
        while True:
            while self._items:
                ev = self._items.popleft()
                if self._bus.is_current(ev):
                    return ev
            if self._ended:
                raise StopAsyncIteration
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    async def next(self, timeout: Optional[float] = None) -> Event[P]:
        """The next event; ``asyncio.TimeoutError`` after ``timeout`` s, ``StopAsyncIteration`` at the end."""
        if timeout is None:
            return await self.__anext__()
        return await asyncio.wait_for(self.__anext__(), timeout)

    def pending(self) -> int:
        """Events buffered and not consumed yet."""
        return len(self._items)

    def close(self) -> None:
        """Unsubscribe; buffered events are dropped and iteration ends."""
        self._bus._remove_stream(self)
        self._items.clear()
        self._end()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "EventStream[P]":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- fed by the bus ----------------------------------------------------

    def _push(self, ev: Event[Any]) -> None:
        if self._ended:
            return
        self._items.append(ev)
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class EventBus:
    """Routes events to callbacks and streams; see the module docs."""

    def __init__(self) -> None:
        self._callbacks: Dict[str, List[Callable[[Any], Any]]] = {}
        self._any: List[Callable[[Event[Any]], Any]] = []
        self._streams: "weakref.WeakSet[EventStream[Any]]" = weakref.WeakSet()
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self.generation = 0
        self.closed = False
        self.dropped_stale = 0

    def is_current(self, ev: Event[Any]) -> bool:
        """Whether ``ev`` may still be delivered (the generation guard)."""
        if ev.generation == self.generation or ev.type in LIFECYCLE_EVENTS:
            return True
        self.dropped_stale += 1
        return False

    def emit(self, ev: Event[Any]) -> None:
        if self.closed or not self.is_current(ev):
            return
        for stream in list(self._streams):
            if stream._type is None or stream._type == ev.type:
                stream._push(ev)
        for fn in list(self._callbacks.get(ev.type, ())):
            self._call(fn, ev.payload, ev.type)
        for fn_any in list(self._any):
            self._call(fn_any, ev, ev.type)

    def _call(self, fn: Callable[[Any], Any], arg: Any, type: str) -> None:
        try:
            result = fn(arg)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        except Exception:
            log.exception("tui-gateway client: a callback for %r raised; the event loop goes on", type)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tui-gateway client: an async event callback raised", exc_info=task.exception())

    def on(self, type: str, fn: Callable[[Any], Any]) -> Unsubscribe:
        self._callbacks.setdefault(type, []).append(fn)

        def unsubscribe() -> None:
            fns = self._callbacks.get(type, [])
            if fn in fns:
                fns.remove(fn)

        return unsubscribe

    def once(self, type: str, fn: Callable[[Any], Any]) -> Unsubscribe:
        fired = False

        def wrapper(payload: Any) -> Any:
            nonlocal fired
            if fired:
                return None
            fired = True
            unsubscribe()
            return fn(payload)

        unsubscribe = self.on(type, wrapper)
        return unsubscribe

    def on_any(self, fn: Callable[[Event[Any]], Any]) -> Unsubscribe:
        self._any.append(fn)

        def unsubscribe() -> None:
            if fn in self._any:
                self._any.remove(fn)

        return unsubscribe

    def stream(self, type: Optional[str]) -> EventStream[Any]:
        stream: EventStream[Any] = EventStream(self, type)
        if self.closed:
            stream._end()
        else:
            self._streams.add(stream)
        return stream

    def _remove_stream(self, stream: EventStream[Any]) -> None:
        self._streams.discard(stream)

    def close(self) -> None:
        """No more events: every stream ends once drained."""
        self.closed = True
        for stream in list(self._streams):
            stream._end()
        self._streams = weakref.WeakSet()
