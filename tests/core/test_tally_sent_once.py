"""A tally increment is sent to Redis once: a connection lost before its answer is not retried.

`RECENT_SECONDS` (core/tally.py) rests on this. If the client re-sent a command whose connection broke
after Redis ran it, the vote would count twice on the board until the next periodic repair.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator

import pytest
import redis.exceptions

from stagevote.config import ConnectionURL, Settings
from stagevote.core.runtime import Runtime
from stagevote.core.tally import Tally

pytestmark = pytest.mark.postgresql  # Redis


class CuttingProxy:
    """TCP between the app and Redis that, once armed, lets the next script call reach Redis and run
    there, then cuts the client's connection before the answer gets back."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.armed = False
        self.cut = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection(*self.upstream)
        cutting = asyncio.Event()

        async def to_redis() -> None:
            while data := await client_reader.read(65536):
                if self.armed and b"EVALSHA" in data.upper():
                    self.armed = False
                    self.cut += 1
                    cutting.set()  # before the write: its answer must not slip through
                redis_writer.write(data)
                await redis_writer.drain()

        async def to_client() -> None:
            while data := await redis_reader.read(65536):
                if cutting.is_set():
                    continue  # the script's answer: dropped, and the connection cut below
                client_writer.write(data)
                await client_writer.drain()

        async def cut_when_told() -> None:
            await cutting.wait()
            await asyncio.sleep(0.2)  # Redis has run the script

        tasks = [asyncio.create_task(job()) for job in (to_redis, to_client, cut_when_told)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, redis_writer):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[CuttingProxy]:
    where = urllib.parse.urlsplit(redis_url)
    cutter = CuttingProxy((where.hostname or "127.0.0.1", where.port or 6379))
    yield cutter
    await cutter.close()


async def test_an_increment_whose_answer_is_lost_is_not_sent_again(settings: Settings, proxy: CuttingProxy) -> None:
    # the app's own Redis client (Runtime.build), only reached through the proxy
    runtime = Runtime.build(settings.model_copy(update={"redis_url": ConnectionURL(await proxy.start())}))
    tally: Tally = runtime.tally
    try:
        await tally.seed(await tally.begin("board"), {"7": 0}, counted_markers=[])
        assert await tally.increment("board", {"7": 1}, marker="1:7") is True

        proxy.armed = True
        with pytest.raises(redis.exceptions.ConnectionError):
            await tally.increment("board", {"7": 1}, marker="2:7")
        assert proxy.cut == 1
        assert await tally.read("board") == {"7": 2}  # Redis ran it once; a retry would have made it 3
        assert tally.take_missed() is not None  # and the reconciler knows to repair what may be short
    finally:
        await runtime.close()
