"""The HTTP export's bounded pipe: a slow client holds the writer back instead of growing the
server's memory, and a client that goes away stops the writer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from api.exports import BoundedPipe, ClientGone


def test_a_reader_that_does_not_read_blocks_the_writer_at_the_bound() -> None:
    """Breaks if the pipe's queue is unbounded: the writer would push all 10 MB at once."""
    pipe = BoundedPipe(chunk_bytes=1000, chunks=4)
    written = 0
    gone: list[BaseException] = []

    def write() -> None:
        nonlocal written
        try:
            for _ in range(10_000):
                pipe.write(b"x" * 1000)
                written += 1000
        except ClientGone as exc:
            gone.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(1.0)
    # 4 chunks queued, one more being put, one in the buffer: far below 10 MB.
    assert written <= 6 * 1000
    pipe.closed_by_reader.set()  # the client goes away
    writer.join(5)
    assert not writer.is_alive() and gone


def test_the_reader_gets_every_byte_in_order_then_the_end() -> None:
    pipe = BoundedPipe(chunk_bytes=10, chunks=2)
    payload = bytes(range(256)) * 40

    def write() -> None:
        for i in range(0, len(payload), 7):
            pipe.write(payload[i : i + 7])
        pipe.finish()

    async def read() -> bytes:
        threading.Thread(target=write, daemon=True).start()
        return b"".join([chunk async for chunk in pipe.chunks()])

    assert asyncio.run(read()) == payload


def test_a_failed_writer_ends_the_body_early() -> None:
    pipe = BoundedPipe(chunk_bytes=10, chunks=2)

    async def read() -> bytes:
        def write() -> None:
            pipe.write(b"0123456789abc")  # past the chunk size: sent
            pipe.write(b"de")  # buffered
            pipe.finish(RuntimeError("store gone"))

        threading.Thread(target=write, daemon=True).start()
        return b"".join([chunk async for chunk in pipe.chunks()])

    body = asyncio.run(read())
    assert body == b"0123456789abc"  # the buffered tail is not sent after a failure
    with pytest.raises(ClientGone):  # and the reader has let go
        pipe._put(b"more")
