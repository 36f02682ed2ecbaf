#!/usr/bin/env python3
"""The lab's S3 endpoint: a TCP proxy in front of moto that can play a stopped S3 server.

    s3proxy.py LISTEN_PORT BACKEND_PORT CONTROL_FILE

Forwards 127.0.0.1:LISTEN_PORT to moto on 127.0.0.1:BACKEND_PORT. CONTROL_FILE holds "up" or
"down" (a missing file is "up"). Down: the listening socket is closed, so new connections are
refused exactly as with a stopped server, and every open connection is cut. Up: it listens again.
moto keeps its objects in memory, so stopping moto itself would lose the bucket: this is the
honest way to stop "the S3 server" for a while. Test code only (tests/lab), never shipped.
"""
import asyncio
import sys
from pathlib import Path

HOST = "127.0.0.1"
POLL = 0.1


class Proxy:
    def __init__(self, listen: int, backend: int, control: Path):
        self.listen, self.backend, self.control = listen, backend, control
        self.server = None
        self.writers: set[asyncio.StreamWriter] = set()

    def wanted(self) -> str:
        try:
            return "down" if self.control.read_text().strip() == "down" else "up"
        except OSError:
            return "up"

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            backend_r, backend_w = await asyncio.open_connection(HOST, self.backend)
        except OSError:
            client_w.transport.abort()
            return
        pair = {client_w, backend_w}
        self.writers |= pair
        try:
            await asyncio.gather(self.pipe(client_r, backend_w), self.pipe(backend_r, client_w))
        finally:
            self.writers -= pair

    async def set_state(self, state: str) -> None:
        if state == "up" and self.server is None:
            self.server = await asyncio.start_server(self.handle, HOST, self.listen, reuse_address=True)
        elif state == "down" and self.server is not None:
            self.server.close()
            self.server = None
            for writer in list(self.writers):
                writer.transport.abort()  # an RST, as when the server process dies
            self.writers.clear()

    async def run(self) -> None:
        while True:
            await self.set_state(self.wanted())
            await asyncio.sleep(POLL)


def main() -> int:
    listen, backend, control = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    asyncio.run(Proxy(listen, backend, control).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
