"""The app's own CPU per web vote, in process: what a change to the vote path costs, to a few microseconds.

`bench/vote_path.py --ab` measures throughput through uvicorn, wrk and two workers sharing two cores
with PostgreSQL: its pairs move by ±10% with identical code. This bench leaves out the HTTP server and
the load generator. A driver process runs `create_server_app()` (Socket.IO in front, lifespan started:
the group commit, the broadcaster, the reconciler, as `serve` runs them) and calls it as ASGI directly,
`--concurrency` requests at a time, each a distinct ballot and token, on PostgreSQL + Redis. It counts
its own CPU (`time.process_time`: the app, the writer, what follows each batch, and the driver's small
fixed share) per 201 answer, after a warm-up. `--bare` drives bench/bare_app.py the same way: the
framework's share of the figure.

`--ab NAME=VALUE` runs drivers A and B (B with those settings, `PYTHONPATH=<a worktree>/src` for
other code) in pairs of alternating order, each on an event of its own, and prints the CPU per vote
of each run, the mean difference B−A, and the last line `cpu ab B-A: ±X.X µs/vote`.

Run: `.venv/bin/python bench/vote_cpu.py [--votes 20000] [--bare] [--ab NAME=VALUE --pairs 6]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from vote_path import (  # type: ignore[import-not-found]  # bench/ is the script's own folder
    analyze,
    build_stage,
    log,
    system,
    vote_lines,
    write_lines,
)

HERE = Path(__file__).resolve().parent
_RESULT = "driver result: "


# --- the driver: one process, the app called as ASGI -----------------------------------------------------


def _requests(path: Path) -> Iterator[tuple[str, list[tuple[bytes, bytes]], bytes]]:
    for line in path.read_text().splitlines():
        _token, _method, url, headers, body = line.split("\t")
        pairs = [(b"host", b"127.0.0.1")]
        for header in headers.split("|"):
            name, _, value = header.partition(": ")
            pairs.append((name.lower().encode(), value.encode()))
        encoded = body.encode()
        pairs.append((b"content-length", str(len(encoded)).encode()))
        yield url, pairs, encoded


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never hangs up
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(requests_file: Path, *, concurrency: int, warm: int, bare: bool) -> dict[str, Any]:
    """Every request of the file through the app, `concurrency` at a time; CPU and time after the first `warm`."""
    if bare:
        sys.path.insert(0, str(HERE))
        from bare_app import app as bare_app  # type: ignore[import-not-found]  # noqa: PLC0415

        app: Any = bare_app
        lifespan: Any = None
    else:
        from stagevote.app import create_server_app  # noqa: PLC0415 - after PYTHONPATH chose the code

        app = create_server_app()
        lifespan = app.other_asgi_app
    pending = iter(list(_requests(requests_file)))
    statuses: dict[int, int] = {}
    done = 0
    mark: dict[str, float] = {}

    async def client() -> None:
        nonlocal done
        for path, headers, body in pending:
            status = await _call(app, path, headers, body)
            statuses[status] = statuses.get(status, 0) + 1
            done += 1
            if done == warm:
                mark["cpu"], mark["wall"] = time.process_time(), time.perf_counter()

    async def run() -> None:
        await asyncio.gather(*(client() for _ in range(concurrency)))
        if not bare:
            await asyncio.sleep(0.5)  # what follows the last batches (the tally) is counted too

    if lifespan is None:
        await run()
    else:
        async with lifespan.router.lifespan_context(lifespan):
            await run()
    cpu, wall = time.process_time() - mark["cpu"], time.perf_counter() - mark["wall"]
    measured = done - warm
    return {
        "cpu_us": cpu / measured * 1e6,
        "rate": measured / wall,
        "statuses": statuses,
        "gc": gc.get_count(),
    }


# --- the orchestration: a stage per run, drivers in alternating pairs --------------------------------------


def run_driver(
    requests_file: Path, env: dict[str, str], args: argparse.Namespace, *, bare: bool = False
) -> dict[str, Any]:
    command = [*args.wrap.split(), sys.executable, str(Path(__file__)), "--drive", str(requests_file)]
    command += ["--concurrency", str(args.concurrency), "--warm", str(args.warm)]
    if bare:
        command.append("--bare")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"driver failed: {done.stderr[-3000:]}")
    result = next(line for line in reversed(done.stdout.splitlines()) if line.startswith(_RESULT))
    return dict(json.loads(result.removeprefix(_RESULT)))


async def orchestrate(args: argparse.Namespace) -> None:
    args.keep = False
    args.server_env = []
    args.workers = 1
    async with system(args, prefix="stagevote-vote-cpu-") as sut:
        env_a = sut.env | {"STAGEVOTE_LOG_LEVEL": "WARNING"}
        env_b = env_a | dict(setting.partition("=")[::2] for setting in args.ab)
        order = [v for n in range(args.pairs) for v in (("A", "B") if n % 2 == 0 else ("B", "A"))] if args.ab else ["A"]
        files = []
        for n in range(len(order) + 1):  # the first: a settling run, not counted
            stage = await build_stage(sut.public_url, sut.email, sut.database_url, args.votes, 1_000_000 * (n + 1))
            files.append(
                write_lines(sut.tmp / f"run{n}.tsv", vote_lines(stage, sut.secret, 1, range(args.votes), f"c{n}"))
            )
        sut.processes.stop(sut.server)  # the stage is built: nothing else on the CPU
        await analyze(sut.database_url)
        if args.bare:
            bare = run_driver(files[0], env_a, args, bare=True)
            log(f"   bare FastAPI, in process: {bare['cpu_us']:.1f} µs/vote ({bare['statuses']})")
        settle = run_driver(files[0], env_a, args)
        log(f"   settling run (not counted): {settle['cpu_us']:.1f} µs/vote, {settle['rate']:.0f} votes/s")
        results: dict[str, list[float]] = {"A": [], "B": []}
        for n, variant in enumerate(order, start=1):
            result = run_driver(files[n], env_a if variant == "A" else env_b, args)
            results[variant].append(result["cpu_us"])
            log(
                f"   run {n:>2} {variant}: {result['cpu_us']:6.1f} µs/vote, {result['rate']:5.0f} votes/s,"
                f" answers {result['statuses']}"
            )
    a = results["A"]
    counted = args.votes - args.warm
    log(f"\n== the app's CPU per web vote, in process ({counted} votes per run, {args.concurrency} at a time)")
    log(f"  A: {', '.join(f'{x:.1f}' for x in a)} µs (median {statistics.median(a):.1f})")
    if args.ab:
        b = results["B"]
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        log(f"  B = A with {' '.join(args.ab)}")
        log(f"  B: {', '.join(f'{x:.1f}' for x in b)} µs (median {statistics.median(b):.1f})")
        log(f"  B−A per pair: {', '.join(f'{d:+.1f}' for d in diffs)} µs")
        spread = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
        log(f"cpu ab B-A: {statistics.mean(diffs):+.1f} µs/vote (sd of a pair {spread:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=20_000, help="votes per run (each a distinct ballot)")
    parser.add_argument("--warm", type=int, default=3_000, help="votes of each run before the count starts")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--bare", action="store_true", help="also the bare FastAPI app, driven the same way")
    parser.add_argument("--ab", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--wrap", default="", help="a command to run each driver under (py-spy record -o … --)")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as uvicorn runs the app
            result = runner.run(drive(args.drive, concurrency=args.concurrency, warm=args.warm, bare=args.bare))
        print(_RESULT + json.dumps(result))
        return
    asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
