"""How much logins stall everything else: /health latency while logins run, argon2 in threads vs on the loop.

The app in process (SQLite, ASGI transport: no server), `--logins` concurrent login loops, and one loop
timing GET /health meanwhile. Run twice: as built (argon2 in worker threads, a bounded number at once)
and with hashing forced back onto the event loop, as it was. Prints latency percentiles; asserts nothing.
Run: `.venv/bin/python bench/password_hashing.py --seconds 5 --logins 4`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from stagevote.app import create_app
from stagevote.auth.models import User
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.security import PasswordHashing, hash_password
from stagevote.migrations import upgrade

PASSWORD = "bench password 1"


async def run(mode: str, seconds: float, logins: int, workdir: Path) -> None:
    database = f"sqlite:///{workdir / f'{mode}.db'}"
    await upgrade(database)
    settings = Settings(database_url=database, secret_key="bench-secret-" + "b" * 40, password_hash_queue=1000)
    original: Callable[..., Any] = PasswordHashing._run
    if mode == "on the loop":

        async def on_the_loop(self: PasswordHashing, work: Callable[[], Any]) -> Any:
            return work()

        PasswordHashing._run = on_the_loop  # type: ignore[method-assign]
    try:
        app = create_app(settings)
        async with LifespanManager(app):
            runtime = app.state.runtime
            async with unit_of_work(runtime.sessionmaker) as session:
                session.add(User(email="bench@example.com", password_hash=hash_password(PASSWORD), role="fan"))
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://bench") as client:
                stop = time.monotonic() + seconds
                done = 0

                async def login_loop() -> None:
                    nonlocal done
                    while time.monotonic() < stop:
                        await client.post("/auth/login", json={"email": "bench@example.com", "password": PASSWORD})
                        done += 1

                health: list[float] = []

                async def health_loop() -> None:
                    # one request every 10 ms, each timed from when it was due: a stalled loop shows
                    next_at = time.perf_counter()
                    while time.monotonic() < stop:
                        next_at += 0.01
                        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                        await client.get("/health")
                        health.append((time.perf_counter() - next_at) * 1000)

                runtime.settings.login_rate_per_account = "100000/minute"
                runtime.settings.login_rate_per_ip = "100000/minute"
                await asyncio.gather(health_loop(), *(login_loop() for _ in range(logins)))
        cuts = statistics.quantiles(health, n=100, method="inclusive")
        print(
            f"{mode:>12}: {done / seconds:5.1f} logins/s · GET /health every 10 ms, from when due: "
            f"p50 {cuts[49]:6.1f} ms, p99 {cuts[98]:6.1f} ms, max {max(health):6.1f} ms"
        )
    finally:
        PasswordHashing._run = original  # type: ignore[method-assign]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--logins", type=int, default=4, help="concurrent login loops")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for mode in ("in threads", "on the loop"):
            await run(mode, args.seconds, args.logins, Path(workdir))


if __name__ == "__main__":
    asyncio.run(main())
