"""Boards for `bench_fanout_ws.py`: N WebSocket clients in one process, as light as can be.

Each client is a bare asyncio protocol on uvloop: it notes when each of the
server's frames arrived (the moment the bytes reached this process) and keeps
the frame, and answers the server's keep-alive pings; nothing else runs per
frame. The frames are read for their revisions only after the run, so the
clients' own cost (in a plant: each in its own browser) does not stand
between the server and the next client's arrival time, as it would with a
full client library parsing every frame on the same two cores.

    this process ─ stdout: "connected\\n" once every board is open and resumed
    parent ─ stdin: "last <R>\\n", "settle <s>\\n" once it has written ─► this process
    this process ─ stdout: one JSON line of every frame, once every board has
                   seen R (or `settle` seconds have passed)

The JSON line: {"frames": [[[arrival epoch s, revision], ...] per client],
"committed": {revision: commit epoch s}} (the commit times stamped on frames).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import struct
import sys
import time
from urllib.parse import urlsplit

import uvloop

REVISION = re.compile(rb'id="board-revision"[^>]*data-revision="(\d+)"')
COMMITTED = re.compile(
    rb'id="board-revision" data-committed-at="([\d.]+)"[^>]*data-revision="(\d+)"'
)
CONNECT_CONCURRENCY = 50
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client's frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class Board(asyncio.Protocol):
    def __init__(self, request: bytes, resume: bytes) -> None:
        self.request = request
        self.resume = resume
        self.upgraded = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshaken = False
        # (arrival, payload) of each text frame, read after the run.
        self.frames: list[tuple[float, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is no asyncio.Transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        arrival = time.time()
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(RuntimeError(status.decode(errors="replace")))
                return
            self.handshaken = True
            assert self.transport is not None
            self.transport.write(masked_frame(TEXT, self.resume))
            self.upgraded.set_result(None)
        self._frames(arrival)

    def _frames(self, arrival: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, size, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == TEXT:
                self.frames.append((arrival, payload))
            elif opcode == PING and self.transport is not None:
                self.transport.write(masked_frame(PONG, payload))
            elif opcode == CLOSE and self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed before the upgrade"))

    def revisions(self) -> list[tuple[float, int]]:
        found = []
        for arrival, payload in self.frames:
            numbers = REVISION.findall(payload)
            if numbers:
                found.append((arrival, max(int(n) for n in numbers)))
        return found


async def run(url: str, clients: int, resume: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    boards: list[Board] = []

    async def connect() -> None:
        async with gate:
            _, board = await loop.create_connection(
                lambda: Board(request, resume.encode()), host, port
            )
            async with asyncio.timeout(120):
                await board.upgraded
            boards.append(board)

    await asyncio.gather(*(connect() for _ in range(clients)))
    print("connected", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    last = int((await reader.readline()).split()[1])  # "last <R>"
    settle = float((await reader.readline()).split()[1])  # "settle <seconds>"
    until = time.monotonic() + settle
    while time.monotonic() < until and not all(_reached(b, last) for b in boards):  # noqa: ASYNC110 - polling the frames is enough here
        await asyncio.sleep(0.2)
    committed: dict[int, float] = {}
    for board in boards:
        for _, payload in board.frames:
            for at, revision in COMMITTED.findall(payload):
                committed.setdefault(int(revision), float(at) / 1000)
        if board.transport is not None:
            board.transport.close()
    body = {"frames": [b.revisions() for b in boards], "committed": committed}
    print(json.dumps(body), flush=True)


def _reached(board: Board, revision: int) -> bool:
    for _, payload in reversed(board.frames[-5:]):  # heartbeats and presence come between
        numbers = REVISION.findall(payload)
        if numbers and max(int(n) for n in numbers) >= revision:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--resume", required=True, help="the JSON resume message")
    args = parser.parse_args()
    uvloop.run(run(args.url, args.clients, args.resume))


if __name__ == "__main__":
    main()
