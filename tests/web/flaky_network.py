"""A browser context on a network that a test closes to a transport and opens again.

`FlakyNetwork` refuses WebSockets (as a proxy that refuses upgrades would) or
aborts event streams until the test allows them, and records what each
transport carried, so a test can say which one delivered a change: the
frames a socket received (the test is the proxy in between) and the events
every EventSource heard (counted in the page). `hold_sockets()` keeps the
server's frames from the page until `release_sockets()`, to catch the moment
a better transport has resumed but not yet answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.async_api import BrowserContext, Page, WebSocketRoute

WAIT_S = 15.0

# Climb back within a second (live.js reads window.taktLiveOptions), and note
# every EventSource and what it hears.
RECORDING = """
window.taktLiveOptions = {climbFirstMs: 300, climbMaxMs: 1000};
window.sseSources = [];
window.sseEvents = [];
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
  constructor(url, init) {
    super(url, init);
    window.sseSources.push(this);
    this.addEventListener("message", (event) => window.sseEvents.push(event.data));
  }
};
"""


class FlakyNetwork:
    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.sockets_allowed = True
        self.sockets_refused = 0
        self.sockets_resumed = 0
        self.socket_frames: list[str] = []
        self._held: list[tuple[WebSocketRoute, str]] | None = None
        self._counted = asyncio.Event()

    async def start(self, *, sockets: str | None = None) -> None:
        """Record in every page of the context; route the sockets matching `sockets`."""
        await self.context.add_init_script(RECORDING)
        if sockets is not None:
            await self.context.route_web_socket(sockets, self._socket)

    async def _socket(self, ws: WebSocketRoute) -> None:
        if not self.sockets_allowed:
            self.sockets_refused += 1
            self._counted.set()
            await ws.close(code=1011, reason="blocked by the test")
            return
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if '"resume"' in str(message):
                self.sockets_resumed += 1
                self._counted.set()
            server.send(message)

        def to_page(message: str | bytes) -> None:
            self.socket_frames.append(str(message))
            if self._held is None:
                ws.send(message)
            else:
                self._held.append((ws, str(message)))

        ws.on_message(to_server)
        server.on_message(to_page)

    def hold_sockets(self) -> None:
        self._held = []

    def release_sockets(self) -> None:
        held, self._held = self._held or [], None
        for ws, message in held:
            ws.send(message)

    async def block_streams(self, pattern: str) -> None:
        await self.context.route(pattern, lambda route: route.abort())

    async def allow_streams(self, pattern: str) -> None:
        await self.context.unroute(pattern)

    def socket_carried(self, needle: str) -> bool:
        return any(needle in frame for frame in self.socket_frames)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until the sockets counted so far (refused, resumed) meet `condition`."""
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._counted.clear()
                await self._counted.wait()


async def stream_carried(page: Page, needle: str) -> bool:
    found = await page.evaluate("n => window.sseEvents.some(e => e.includes(n))", needle)
    return bool(found)


async def streams_open(page: Page) -> int:
    count = await page.evaluate("window.sseSources.filter(s => s.readyState !== 2).length")
    return int(count)
