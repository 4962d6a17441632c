"""One JSON-RPC connection to one gateway child: ids, pending calls, dispatch.

:class:`Connection` owns the map of pending calls (a future per id, ids are
integers counted by the client) and routes every incoming message:

- a response settles its pending call (``RpcError`` for an ``error``); a
  response to an id the client gave up on (timeout, cancellation) is
  counted and dropped; anything else it cannot place becomes a
  ``protocol_error`` report;
- ``{"method":"event"}`` notifications go to ``on_event(type, payload)``;
  other notifications too, typed by their method;
- a request from the gateway (ids like ``"gw-1"``) goes to the handler
  registered for its method, in its own task; the return value becomes the
  ``result``, a raised :class:`RpcError` its ``error``, any other exception
  a ``-32000`` error, and an unknown method ``-32601``;
- a line that is not a message goes to ``on_malformed``. Nothing received is
  ever raised into the caller's code.

A *hook* given with a call runs synchronously when the response is read,
before the next line is dispatched. ``spawn_process`` uses it to register a
process handle before the output and exit events that may follow in the same
read, so none is missed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar, Union

from .errors import HANDLER_FAILED, INTERNAL_ERROR, METHOD_NOT_FOUND, RequestTimeoutError, RpcError
from .transport import Incoming, Malformed, MessageReader, MessageWriter, Parsed, encode_message

__all__ = ["Connection", "RequestHandler", "ResultHook", "BatchCall", "BatchEntry"]

T = TypeVar("T")


class BatchEntry(Generic[T]):
    """The answer to one request of :meth:`Gateway.batch`: ``ok`` with its
    ``result``, or not ``ok`` with its ``error`` (an :class:`RpcError`). The
    Node client's batch gives ``{ok: true, result}`` / ``{ok: false, error}``."""

    __slots__ = ("ok", "result", "error")

    def __init__(self, ok: bool, result: Optional[T] = None, error: Optional[RpcError] = None) -> None:
        self.ok = ok
        self.result = result
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchEntry):
            return NotImplemented
        return (self.ok, self.result, self.error) == (other.ok, other.result, other.error)

    def __repr__(self) -> str:
        return f"BatchEntry(ok=True, result={self.result!r})" if self.ok else f"BatchEntry(ok=False, error={self.error!r})"


#: One call of a batch: ``(method, params)``, or a mapping
#: ``{"method": m, "params": p, "notify": True}`` (the Node client's form;
#: ``notify`` sends it as a notification, answered by nothing).
BatchCall = Union[Tuple[str, Any], Mapping[str, Any]]

log = logging.getLogger("tui_gateway_client")

RequestHandler = Callable[[Any], Any]
"""A server-to-client request handler: ``params -> result`` (or an awaitable of it)."""

ResultHook = Callable[[Any], Any]
"""Runs on a result in the reader, before the next message; returns what the call returns."""


class _Pending:
    __slots__ = ("future", "method", "hook")

    def __init__(self, future: "asyncio.Future[Any]", method: str, hook: Optional[ResultHook]) -> None:
        self.future = future
        self.method = method
        self.hook = hook


def _preview(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:200]


class Connection:
    """JSON-RPC over a :class:`MessageReader` and a :class:`MessageWriter`."""

    def __init__(
        self,
        reader: MessageReader,
        writer: MessageWriter,
        *,
        handlers: Mapping[str, RequestHandler],
        on_event: Callable[[str, Any], None],
        on_malformed: Callable[[Malformed], None],
        on_protocol_error: Callable[[str, Any], None],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._handlers = handlers
        self._on_event = on_event
        self._on_malformed = on_malformed
        self._on_protocol_error = on_protocol_error
        self._pending: Dict[int, _Pending] = {}
        self._next_id = 1
        self._closed: Optional[Callable[[], BaseException]] = None
        self._tasks: Set["asyncio.Task[None]"] = set()
        #: ids of process.spawn calls given up on (timeout, cancellation)
        self._abandoned_spawns: Set[int] = set()
        #: While set and not done, frames wait before they are written (a
        #: session reattaching: the pipes are gone, new ones are coming).
        self._gate: Optional["asyncio.Future[None]"] = None
        #: While not None, what was read waits here to be dispatched, with its
        #: line count (a session's first frames wait for listeners).
        self._held: Optional[List[Tuple[Incoming, int]]] = None
        self.late_responses = 0
        self.requests_served = 0
        self.messages_in = 0

    # -- state ---------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def writer(self) -> MessageWriter:
        return self._writer

    @property
    def reader(self) -> MessageReader:
        return self._reader

    def rebind(
        self,
        reader: MessageReader,
        writer: MessageWriter,
        *,
        on_event: Callable[[str, Any], None],
        on_malformed: Callable[[Malformed], None],
        on_protocol_error: Callable[[str, Any], None],
    ) -> None:
        """Carry on over new pipes (a session reattached, docs/sessions.md):
        pending calls, ids and handler tasks stay; answers to the calls come
        through the new reader, answers to the gateway's requests go out
        through the new writer. Call :meth:`run` again to read."""
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._on_malformed = on_malformed
        self._on_protocol_error = on_protocol_error

    @property
    def first_held_line(self) -> Optional[int]:
        """The line count of the first line read and held (not yet dispatched), or ``None``."""
        return self._held[0][1] if self._held else None

    def hold_dispatch(self) -> None:
        """Keep what is read from being dispatched (answers to pending calls
        excepted) until :meth:`resume_dispatch`."""
        if self._held is None:
            self._held = []

    def resume_dispatch(self) -> None:
        """Dispatch what :meth:`hold_dispatch` kept, in order, and what comes next at once."""
        held = self._held
        if held is None:
            return
        while held:
            item, line = held.pop(0)
            self._reader.delivered = line
            self._dispatch_one(item)
        self._held = None
        self._reader.delivered = self._reader.lines

    def hold(self) -> None:
        """Keep frames from being written until :meth:`release` (a session reattaching)."""
        if self._gate is None or self._gate.done():
            self._gate = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        """Write the frames :meth:`hold` kept, and every later one, at once."""
        gate, self._gate = self._gate, None
        if gate is not None and not gate.done():
            gate.set_result(None)

    def fail_pending(self, make_error: Callable[[], BaseException]) -> None:
        """The peer is gone: every pending call and every later call raises ``make_error()``."""
        self.release()
        self._closed = make_error
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(make_error())
        for task in list(self._tasks):
            task.cancel()

    # -- reading -------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch until the gateway's stdout ends."""
        while True:
            batch = await self._reader.read()
            if batch is None:
                return
            self._dispatch_batch(batch)
            # Do not keep the last read's messages alive while waiting for the next.
            del batch

    def _dispatch_batch(self, batch: List[Any]) -> None:
        reader = self._reader
        lines = reader.last_lines
        for i, item in enumerate(batch):
            line = lines[i] if i < len(lines) else reader.lines
            if self._held is not None and not self._answers_pending(item):
                self._held.append((item, line))
                continue
            reader.delivered = line
            self._dispatch_one(item)
        if self._held is None:
            reader.delivered = reader.lines

    def _answers_pending(self, item: Any) -> bool:
        """Whether ``item`` answers a call waiting now (never held: a start may wait for it)."""
        if not isinstance(item, Parsed) or not isinstance(item.value, dict):
            return False
        msg = item.value
        rid = msg.get("id")
        return "method" not in msg and isinstance(rid, int) and not isinstance(rid, bool) and rid in self._pending

    def _dispatch_one(self, item: Any) -> None:
        try:
            self._dispatch_item(item)
        except Exception:  # a bug here must not stop the reader
            log.exception("tui-gateway client: dispatching a message failed")

    def _dispatch_item(self, item: Any) -> None:
        if isinstance(item, Malformed):
            self._on_malformed(item)
            return
        assert isinstance(item, Parsed)
        value = item.value
        self.messages_in += 1
        if isinstance(value, list):
            if not value:
                self._on_malformed(Malformed("an empty JSON array is not a message", 2, "[]"))
            for element in value:
                self._dispatch_message(element)
        else:
            self._dispatch_message(value)

    def _dispatch_message(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            self._on_malformed(Malformed("not a JSON-RPC message (not an object)", len(_preview(msg)), _preview(msg)))
            return
        method = msg.get("method")
        if isinstance(method, str):
            if "id" in msg:
                self._serve(msg["id"], method, msg.get("params"))
            elif method == "event":
                params = msg.get("params")
                if isinstance(params, dict) and isinstance(params.get("type"), str):
                    self._on_event(params["type"], params.get("payload"))
                else:
                    self._on_protocol_error("an event without a string params.type", msg)
            else:
                self._on_event(method, msg.get("params"))
            return
        if "id" in msg and ("result" in msg or "error" in msg):
            self._settle(msg)
            return
        self._on_malformed(Malformed("not a JSON-RPC message (no method, no result or error)", len(_preview(msg)), _preview(msg)))

    def _settle(self, msg: Dict[str, Any]) -> None:
        rid = msg["id"]
        pending = None
        if isinstance(rid, int) and not isinstance(rid, bool):
            pending = self._pending.pop(rid, None)
        if pending is None:
            if isinstance(rid, int) and not isinstance(rid, bool) and 0 < rid < self._next_id:
                self.late_responses += 1  # a call that timed out or was cancelled
                if rid in self._abandoned_spawns:
                    self._abandoned_spawns.discard(rid)
                    self._kill_abandoned(msg.get("result"))
            elif rid is None:
                self._on_protocol_error("an error the gateway could not attribute to a request (id null)", msg)
            else:
                self._on_protocol_error(f"a response to an id this client never sent: {rid!r}", msg)
            return
        future = pending.future
        if future.done():
            return
        if "error" in msg:
            err = msg["error"]
            if isinstance(err, dict):
                code = err.get("code")
                future.set_exception(
                    RpcError(
                        code if isinstance(code, int) else INTERNAL_ERROR,
                        str(err.get("message", "")),
                        err.get("data"),
                        method=pending.method,
                    )
                )
            else:
                future.set_exception(RpcError(INTERNAL_ERROR, f"malformed error member: {err!r}", method=pending.method))
            return
        result = msg["result"]
        if pending.hook is not None:
            try:
                result = pending.hook(result)
            except Exception as exc:
                future.set_exception(exc)
                return
        future.set_result(result)

    def _kill_abandoned(self, result: Any) -> None:
        """A spawn given up on did start: do not leave it running (SIGKILL, as a notification)."""
        proc = result.get("proc") if isinstance(result, dict) else None
        if not isinstance(proc, int) or isinstance(proc, bool):
            return
        frame = encode_message({"jsonrpc": "2.0", "method": "process.signal", "params": {"proc": proc, "signal": "SIGKILL"}})
        task = asyncio.get_running_loop().create_task(self._send_quietly(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- calls ---------------------------------------------------------------

    def _register(self, method: str, params: Any, hook: Optional[ResultHook]) -> Tuple[int, "asyncio.Future[Any]", Dict[str, Any]]:
        if self._closed is not None:
            raise self._closed()
        rid = self._next_id
        self._next_id += 1
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            msg["params"] = params
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = _Pending(future, method, hook)
        return rid, future, msg

    async def _send_quietly(self, frame: bytes) -> None:
        if self._gate is not None:
            await asyncio.shield(self._gate)
        try:
            await self._writer.send_bytes(frame)
        except (ConnectionError, OSError):
            # The gateway is gone or going: its stdout EOF fails every pending
            # call with GatewayExited, which is the error worth reporting.
            pass

    async def call(self, method: str, params: Any = None, *, timeout: Optional[float] = None, hook: Optional[ResultHook] = None) -> Any:
        """Send a request and return its result; see the module docs."""
        rid, future, msg = self._register(method, params, hook)
        try:
            frame = encode_message(msg)
        except BaseException:
            self._pending.pop(rid, None)
            raise

        async def roundtrip() -> Any:
            await self._send_quietly(frame)
            return await future

        try:
            if timeout is None:
                await self._send_quietly(frame)
                return await future
            try:
                return await asyncio.wait_for(roundtrip(), timeout)
            except asyncio.TimeoutError:
                if future.done() and not future.cancelled() and future.exception() is None:
                    return future.result()
                raise RequestTimeoutError(method, timeout) from None
        finally:
            if self._pending.pop(rid, None) is not None and method == "process.spawn":
                # Given up on before its answer (which would have taken the
                # entry): if the process starts, kill it.
                self._abandoned_spawns.add(rid)

    async def batch(self, calls: Sequence[BatchCall], *, timeout: Optional[float] = None) -> List[Optional[BatchEntry[Any]]]:
        """Send ``calls`` as one JSON-RPC batch: one entry per call, in order,
        a :class:`BatchEntry` for a request and ``None`` for a notification."""
        if not calls:
            return []
        parsed: List[Tuple[str, Any, bool]] = []
        for call in calls:
            if isinstance(call, Mapping):
                parsed.append((call["method"], call.get("params"), bool(call.get("notify", False))))
            else:
                method, params = call
                parsed.append((method, params, False))
        slots: List[Optional[Tuple[int, "asyncio.Future[Any]", Dict[str, Any]]]] = []
        frames: List[Dict[str, Any]] = []
        for method, params, notify in parsed:
            if notify:
                note: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
                if params is not None:
                    note["params"] = params
                frames.append(note)
                slots.append(None)
            else:
                entry = self._register(method, params, None)
                frames.append(entry[2])
                slots.append(entry)
        entries = [e for e in slots if e is not None]
        try:
            frame = encode_message(frames)
        except BaseException:
            for rid, _, _ in entries:
                self._pending.pop(rid, None)
            raise

        async def roundtrip() -> List[Optional[BatchEntry[Any]]]:
            await self._send_quietly(frame)
            out: List[Optional[BatchEntry[Any]]] = []
            for slot in slots:
                if slot is None:
                    out.append(None)
                    continue
                try:
                    out.append(BatchEntry(True, await slot[1]))
                except RpcError as exc:
                    out.append(BatchEntry(False, error=exc))
            return out

        try:
            if timeout is None:
                return await roundtrip()
            try:
                return await asyncio.wait_for(roundtrip(), timeout)
            except asyncio.TimeoutError:
                raise RequestTimeoutError("batch of %d" % len(calls), timeout) from None
        finally:
            for rid, _, _ in entries:
                self._pending.pop(rid, None)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no id, no response)."""
        if self._closed is not None:
            raise self._closed()
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if self._gate is not None:
            await asyncio.shield(self._gate)
        await self._writer.send_bytes(encode_message(msg))

    # -- requests from the gateway -------------------------------------------

    def _serve(self, rid: Any, method: str, params: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(rid, method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, rid: Any, method: str, params: Any) -> None:
        self.requests_served += 1
        handler = self._handlers.get(method)
        response: Dict[str, Any]
        if handler is None:
            response = {"jsonrpc": "2.0", "id": rid, "error": {"code": METHOD_NOT_FOUND, "message": f"Method not found: {method}"}}
        else:
            try:
                result = handler(params)
                if inspect.isawaitable(result):
                    result = await result
                response = {"jsonrpc": "2.0", "id": rid, "result": result}
            except RpcError as exc:
                response = {"jsonrpc": "2.0", "id": rid, "error": exc.to_error_object()}
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("tui-gateway client: handler for %r raised %r", method, exc)
                response = {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "error": {"code": HANDLER_FAILED, "message": f"{type(exc).__name__}: {exc}", "data": {"exception": type(exc).__name__}},
                }
        try:
            frame = encode_message(response)
        except (TypeError, ValueError) as exc:
            frame = encode_message(
                {"jsonrpc": "2.0", "id": rid, "error": {"code": INTERNAL_ERROR, "message": f"the handler's result cannot be encoded as JSON: {exc}"}}
            )
        await self._send_quietly(frame)
