"""A PostgreSQL host that accepts TCP and never answers must not hang a connection attempt for ever.

The silent listener is a real socket that accepts and never writes (a half-dead server, a black-holing
proxy). ``make_engine`` sets psycopg's ``connect_timeout`` (10 s unless the URL's own ``connect_timeout``
says otherwise); the attempt ends in a retryable :class:`StorageError` within it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from collectors.errors import StorageError
from collectors.storage.engine import make_engine
from collectors.storage.migrate import current_revision
from collectors.storage.reads import last_trade
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import trade


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # held open, never written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def _attempt(url: str) -> tuple[StorageError, float]:
    engine = make_engine(url)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as caught:
            current_revision(engine)
    finally:
        engine.dispose()
    return caught.value, time.monotonic() - started


@pytest.mark.timeout(60)
def test_the_urls_own_connect_timeout_wins(silent_port: int) -> None:
    error, took_s = _attempt(f"postgresql://postgres@127.0.0.1:{silent_port}/okx?connect_timeout=2")
    assert error.transient is True, error
    assert "timeout" in str(error).lower(), error
    assert 2.0 <= took_s < 6.0, took_s


@pytest.mark.timeout(90)
def test_the_default_connect_timeout_is_10_s(silent_port: int) -> None:
    error, took_s = _attempt(f"postgresql://postgres@127.0.0.1:{silent_port}/okx")
    assert error.transient is True, error
    assert "timeout" in str(error).lower(), error
    assert 10.0 <= took_s < 20.0, took_s


@pytest.mark.timeout(60)
def test_a_reader_fails_retryable_within_the_timeout(silent_port: int) -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent_port}/okx?connect_timeout=2")
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as caught:
            last_trade(engine, exchange="okx", inst_id="BTC-USDT")
    finally:
        engine.dispose()
    assert caught.value.transient is True, caught.value
    assert time.monotonic() - started < 6.0


@pytest.mark.timeout(60)
def test_the_writer_fails_retryable_within_the_urls_timeout(silent_port: int) -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent_port}/okx?connect_timeout=2")
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as caught:
            sink.write(spec, [spec.to_row(trade(1), 0)])
    finally:
        sink.close()
        engine.dispose()
    assert caught.value.transient is True and not caught.value.bad_data, caught.value
    assert 2.0 <= time.monotonic() - started < 6.0
