"""Demo-set-aware admission: which waiting request the engine gets next.

vLLM schedules first-come-first-served and evicts cached blocks least-recently-used. When the
demo blocks of the sets in use exceed the KV cache, interleaved requests evict each other's
blocks and nothing is reused. This layer holds requests before the engine and admits them so
that requests sharing a demo block run while it is resident:

1. a request that has waited `max_wait` seconds goes next, whatever its set (bounded
   unfairness: no set starves);
2. else the oldest request whose block we believe resident (its set ran recently);
3. else the oldest request of a new set, if its block fits beside the blocks of the sets
   still running (blocks of idle sets make room, least recently used first); if it does
   not fit, it waits for a running set to finish.

Residency is our model of vLLM's cache: blocks of sets we admitted, in LRU order, their token
counts summed against the cache capacity. When everything fits, every request is admitted
at once: the layer costs nothing. The policy is pure (`SetAwareQueue.pick` over a clock);
`DemoSetScheduler` wraps it for asyncio.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Ticket:
    """One request waiting for, or holding, admission."""

    key: str | None  # the demo block's content id; None: no demo block (always admissible)
    tokens: int  # demo-block tokens: what the block occupies in the KV cache
    arrival: float
    seq: int = 0  # tie-breaker: submission order
    admitted_at: float | None = None
    event: asyncio.Event | None = field(default=None, repr=False)


class SetAwareQueue:
    """The admission policy; no I/O, a clock passed in, so tests can drive it by hand."""

    def __init__(
        self,
        capacity_tokens: int,
        max_inflight: int,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.capacity, self.max_inflight, self.max_wait = capacity_tokens, max_inflight, max_wait
        self.clock = clock
        self.waiting: list[Ticket] = []
        self.running: dict[str | None, int] = {}  # key -> requests in the engine
        self.resident: OrderedDict[str, int] = OrderedDict()  # key -> block tokens, LRU first
        self._seq = itertools.count()

    @property
    def inflight(self) -> int:
        return sum(self.running.values())

    def submit(self, key: str | None, tokens: int) -> Ticket:
        ticket = Ticket(key, tokens, self.clock(), next(self._seq))
        self.waiting.append(ticket)
        return ticket

    def pick(self) -> Ticket | None:
        """The ticket to admit now, or None (engine full, or no room for a new block)."""
        if not self.waiting or self.inflight >= self.max_inflight:
            return None
        now = self.clock()
        oldest = min(self.waiting, key=lambda t: t.seq)
        if now - oldest.arrival >= self.max_wait:
            return oldest
        hits = [t for t in self.waiting if t.key is None or t.key in self.resident]
        if hits:
            return min(hits, key=lambda t: t.seq)
        return oldest if self._fits(oldest) or self.inflight == 0 else None

    def _fits(self, ticket: Ticket) -> bool:
        """Would the block fit beside the blocks of sets that are running?"""
        pinned = sum(tokens for key, tokens in self.resident.items() if self.running.get(key))
        return pinned + ticket.tokens <= self.capacity

    def admit(self, ticket: Ticket) -> None:
        self.waiting.remove(ticket)
        ticket.admitted_at = self.clock()
        self.running[ticket.key] = self.running.get(ticket.key, 0) + 1
        if ticket.key is not None:
            self.resident[ticket.key] = ticket.tokens
            self.resident.move_to_end(ticket.key)
            self._evict()

    def _evict(self) -> None:
        """Forget idle blocks, least recently used first, until the model fits the cache."""
        total = sum(self.resident.values())
        for key in list(self.resident):
            if total <= self.capacity:
                return
            if not self.running.get(key):
                total -= self.resident.pop(key)

    def finish(self, ticket: Ticket) -> None:
        self.running[ticket.key] -= 1
        if not self.running[ticket.key]:
            del self.running[ticket.key]

    def state(self) -> dict[str, int]:
        return {
            "waiting": len(self.waiting),
            "running": self.inflight,
            "resident_sets": len(self.resident),
        }


class DemoSetScheduler:
    """`async with scheduler.slot(key, tokens):` around an engine request."""

    def __init__(self, queue: SetAwareQueue, on_admit: Callable[[Ticket], None] | None = None):
        self.queue, self.on_admit = queue, on_admit
        self._tick: asyncio.Task | None = None

    def _pump(self) -> None:
        while (ticket := self.queue.pick()) is not None:
            self.queue.admit(ticket)
            if self.on_admit:
                self.on_admit(ticket)
            ticket.event.set()
        if self.queue.waiting and self._tick is None:
            self._tick = asyncio.get_running_loop().create_task(self._age())

    async def _age(self) -> None:
        """Re-check while requests wait: aging can admit one without any request finishing."""
        try:
            while self.queue.waiting:
                await asyncio.sleep(min(1.0, self.queue.max_wait / 4))
                self._pump()
        finally:
            self._tick = None

    def slot(self, key: str | None, tokens: int) -> _Slot:
        return _Slot(self, key, tokens)


class _Slot:
    def __init__(self, scheduler: DemoSetScheduler, key: str | None, tokens: int):
        self.s, self.key, self.tokens = scheduler, key, tokens
        self.ticket: Ticket | None = None

    async def __aenter__(self) -> Ticket:
        q = self.s.queue
        self.ticket = q.submit(self.key, self.tokens)
        self.ticket.event = asyncio.Event()
        self.s._pump()
        try:
            await self.ticket.event.wait()
        except asyncio.CancelledError:  # the client left while waiting
            if self.ticket in q.waiting:
                q.waiting.remove(self.ticket)
            else:
                q.finish(self.ticket)
            self.s._pump()
            raise
        return self.ticket

    async def __aexit__(self, *exc) -> bool:
        self.s.queue.finish(self.ticket)
        self.s._pump()
        return False
