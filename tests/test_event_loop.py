"""No engine blocks the event loop: blockbuster turns any blocking call made on
the loop's thread (socket I/O, sleep, file reads) into an error."""

from __future__ import annotations

import asyncio

from blockbuster import blockbuster_ctx

from crawler import Fetcher
from tests.server import LoopbackServer


async def test_engine_never_blocks_the_loop(engine: str, server: LoopbackServer) -> None:
    urls = [server.url(f"/slow?delay=0.2&b={i}") for i in range(8)]
    urls += [server.url("/gzip"), server.url("/status/503"), "http://127.0.0.1:9/"]
    async with Fetcher(engine=engine, retries=1, backoff=0) as fetcher:
        await fetcher.get(server.url("/ok"))  # the first connection may load TLS settings
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        with blockbuster_ctx(["crawler"]):
            results = [r async for r in fetcher.map(urls)]
        ticker.cancel()
    assert len(results) == len(urls)
    assert sum(r.ok for r in results) == len(urls) - 1
    assert ticks >= 10  # the loop kept turning while the requests were in flight
