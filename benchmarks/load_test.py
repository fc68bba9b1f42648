"""Load test of ``gnnrec serve``: throughput and latency percentiles of its three kinds of request.

    python benchmarks/load_test.py CHECKPOINT --data-dir ../shared/data/ml-100k

Starts ``gnnrec serve CHECKPOINT`` itself on a free 127.0.0.1 port (loopback only), waits for ``/health``,
then for each scenario — a known user's top-10, the 10 films most similar to a film, a new person with 5
liked films — and each concurrency (default 1 and 16) sends a fixed number of requests from that many
concurrent clients (aiohttp, keep-alive connections), stopping early at the time limit. Users, films and people are
drawn with a fixed seed. Prints one Markdown table: requests, errors, requests per second, p50/p99 latency
(client-side, including HTTP), and the target where the issue sets one. Client and server share the
machine's cores, so the numbers are what a client on the same machine sees. Stops the server on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gnnrec.benchmark import harness  # noqa: E402
from gnnrec.testing.serving import LOOPBACK, free_port  # noqa: E402

# (scenario, concurrency) -> (p99 ms at most, requests/s at least); None: no target
TARGETS = {
    ("known-user top-10", 16): (30.0, 200.0),
    ("new person, 5 liked", 1): (150.0, None),
    ("new person, 5 liked", 16): (150.0, None),
}


@dataclass
class Result:
    scenario: str
    concurrency: int
    latencies: list[float]
    errors: int
    seconds: float

    def row(self) -> str:
        done = len(self.latencies)
        p50, p99 = (np.percentile(self.latencies, [50, 99]) * 1000) if done else (float("nan"),) * 2
        rate = done / self.seconds if self.seconds else float("nan")
        target = TARGETS.get((self.scenario, self.concurrency))
        verdict = ""
        if target:
            p99_max, rate_min = target
            met = p99 <= p99_max and (rate_min is None or rate >= rate_min)
            wanted = f"p99 ≤ {p99_max:g} ms" + (f", ≥ {rate_min:g} req/s" if rate_min else "")
            verdict = f"{wanted}: {'met' if met else 'missed'}"
        return (
            f"| {self.scenario} | {self.concurrency} | {done} | {self.errors} | {self.seconds:.1f} | {rate:.0f} "
            f"| {p50:.1f} | {p99:.1f} | {verdict} |"
        )


def scenario_requests(name: str, catalogue, count: int, seed: int) -> list[tuple[str, str, dict | None]]:
    """``count`` (method, path, JSON body) requests of one scenario, drawn with ``seed``."""
    rng = random.Random(seed)
    users, movies = catalogue.user_ids, catalogue.movie_ids
    popular = [movies[i] for i in np.argsort(catalogue.popularity)[::-1][:300].tolist()]
    if name == "known-user top-10":
        return [("GET", f"/api/users/{rng.choice(users)}/recommendations?k=10", None) for _ in range(count)]
    if name == "similar films":
        return [("GET", f"/api/movies/{rng.choice(movies)}/similar?k=10", None) for _ in range(count)]
    return [("POST", "/api/recommendations", {"liked": rng.sample(popular, 5), "k": 10}) for _ in range(count)]


async def drive(base: str, requests: list, concurrency: int, time_limit: float) -> tuple[list[float], int, float]:
    """Send ``requests`` from ``concurrency`` clients until all are answered or ``time_limit`` s pass."""
    latencies: list[float] = []
    errors = 0
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:
        start = time.perf_counter()
        deadline = start + time_limit

        async def worker() -> None:
            nonlocal position, errors
            while position < len(requests) and time.perf_counter() < deadline:
                method, path, body = requests[position]
                position += 1
                tic = time.perf_counter()
                async with session.request(method, path, json=body) as response:
                    await response.read()
                    ok = response.status == 200
                elapsed = time.perf_counter() - tic
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gnnrec", "serve", args.checkpoint, "--host", LOOPBACK, "--port", str(port)]
    command += ["--quiet", "--threads", str(args.server_threads)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.server_threads)}
    return subprocess.Popen(command, env=env)


def wait_until_up(base: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"load_test: gnnrec serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise SystemExit(f"load_test: gnnrec serve did not answer within {timeout:g} s") from None
            time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a .safetensors checkpoint or a `gnnrec train` run directory")
    harness.add_options(parser, data_dir=True, threads=None, seed=0)
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario and concurrency")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per scenario and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before each measurement")
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--start-timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.time_limit <= 0 or min(args.concurrency) < 1:
        parser.error("--requests, --time-limit and --concurrency must be positive")

    from argparse import Namespace

    from gnnrec.cli.common import load_checkpoint
    from gnnrec.serving import Catalogue

    data = Namespace(dataset=None, split=None, data_dir=args.data_dir, val_fraction=None, data_seed=None)
    model, split = load_checkpoint(args.checkpoint, data)
    catalogue = Catalogue(split)
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    process = start_server(args, port)
    try:
        health = wait_until_up(base, process, args.start_timeout)
        print(f"server: {health['model']} on {health['dataset']} ({health['users']} users, {health['movies']} "
              f"movies), torch threads {args.server_threads}, similarity {health['similarity']}")  # fmt: skip
        print(f"load: {args.requests} requests per row (time limit {args.time_limit:g} s), seed {args.seed}, "
              f"{args.warmup} warm-up requests first; latency measured by the client (aiohttp), loopback")  # fmt: skip
        print()
        print("| request | concurrency | requests | errors | seconds | req/s | p50 ms | p99 ms | target |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for number, scenario in enumerate(("known-user top-10", "similar films", "new person, 5 liked")):
            for concurrency in args.concurrency:
                seed = args.seed * 1000 + number * 100 + concurrency
                warm = scenario_requests(scenario, catalogue, args.warmup, seed + 1)
                asyncio.run(drive(base, warm, min(concurrency, args.warmup), args.time_limit))
                requests = scenario_requests(scenario, catalogue, args.requests, seed)
                latencies, errors, seconds = asyncio.run(drive(base, requests, concurrency, args.time_limit))
                print(Result(scenario, concurrency, latencies, errors, seconds).row(), flush=True)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
