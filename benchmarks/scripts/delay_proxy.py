"""A TCP proxy that delays every chunk by a fixed time each way: a simulated network.

    python delay_proxy.py UPSTREAM_HOST UPSTREAM_PORT DELAY_MS [LISTEN_PORT]

Each chunk read from one side is written to the other at its time of receipt
plus DELAY_MS (one way, so a round trip gains twice that), in order per
direction; bandwidth is not limited. The proxy prints "listening PORT" once it
accepts connections (LISTEN_PORT 0 or absent: a free port on 127.0.0.1) and runs
until killed. One thread, one asyncio loop on a select() selector: epoll's
timeout has millisecond granularity, which would add up to a millisecond to each
delay; select() waits to the microsecond.
"""

from __future__ import annotations

import asyncio
import ctypes
import selectors
import sys
from collections import deque


class _Direction:
    """Bytes received at t go out at t + delay, in the order received."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        self.out: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes | None]] = deque()  # None: the sender closed
        self.timer: asyncio.TimerHandle | None = None

    def push(self, data: bytes | None) -> None:
        self.queue.append((self.loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            data = self.queue.popleft()[1]
            if self.out is None or self.out.is_closing():
                continue
            if data is None:
                self.out.close()
            else:
                self.out.write(data)
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)


class _Side(asyncio.Protocol):
    """One end of a proxied connection: what it receives goes into ``incoming``."""

    def __init__(self, incoming: _Direction, outgoing: _Direction) -> None:
        self.incoming = incoming
        self.outgoing = outgoing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.outgoing.out = transport

    def data_received(self, data: bytes) -> None:
        self.incoming.push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.incoming.push(None)


class _Client(_Side):
    """The accepted side: reading waits until the upstream connection is open."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, upstream: tuple[str, int]) -> None:
        super().__init__(_Direction(loop, delay), _Direction(loop, delay))
        self.loop = loop
        self.upstream = upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.loop.create_task(self._connect(transport))

    async def _connect(self, transport: asyncio.BaseTransport) -> None:
        try:
            await self.loop.create_connection(lambda: _Side(self.outgoing, self.incoming), *self.upstream)
        except OSError:
            transport.close()
            return
        transport.resume_reading()  # type: ignore[attr-defined]


async def serve(upstream: tuple[str, int], delay: float, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(loop, delay, upstream), "127.0.0.1", port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def _precise_timers() -> None:
    """Linux lets a sleeping thread wake up to 50 µs late (its timer slack); ask for 1 µs."""
    try:
        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in nanoseconds
    except (OSError, AttributeError):
        pass


def main() -> None:
    _precise_timers()
    host, port, delay_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    listen = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(serve((host, port), delay_ms / 1000, listen))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
