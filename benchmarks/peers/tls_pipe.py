"""A TLS byte pipe in front of the simulator, for cryptofeed (which refuses ``ws://`` addresses).

Every accepted TLS connection gets its own plain TCP connection to the simulator and the bytes are copied both
ways unchanged, so the WebSocket protocol, its close frames and every fault's timing pass through as they are. How a
side ends is passed on: an end of stream (a FIN, which is also what an asyncio ``abort()`` such as the simulator's
``drop`` sends when nothing is left unread) closes the other side cleanly (TLS close_notify, then FIN); a reset
(RST) resets the other side, so the client sees the ending it would see without the pipe. The certificate is a fresh self-signed one for 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import subprocess
from pathlib import Path

__all__ = ["TlsPipe", "make_certificate"]

CHUNK = 65_536


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for IP 127.0.0.1 (the ``openssl`` command line), valid one day."""
    cert, key = folder / "pipe-cert.pem", folder / "pipe-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a reset peer does; ``abort()`` alone sends a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until the reader ends; True for a clean end of stream, False for a reset."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        return False
    return True


class TlsPipe:
    def __init__(self, *, upstream_port: int, cert: Path, key: Path) -> None:
        self._upstream_port = upstream_port
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert, key)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Abort every piped connection (both ends) and stop listening."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_w)
        try:
            try:
                sim_r, sim_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            except OSError:
                _reset(client_w)
                return
            self._writers.add(sim_w)
            down = asyncio.ensure_future(_copy(sim_r, client_w))
            up = asyncio.ensure_future(_copy(client_r, sim_w))
            done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
            first = done.pop()
            other_w = client_w if first is down else sim_w
            if first.result():
                other_w.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                    await asyncio.wait_for(other_w.wait_closed(), 5)
            else:
                _reset(other_w)
            for end in (client_w, sim_w):
                end.transport.abort()
            await asyncio.gather(down, up, return_exceptions=True)
        finally:
            self._tasks.discard(task)
            self._writers.difference_update(w for w in list(self._writers) if w.transport.is_closing())
