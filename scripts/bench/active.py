"""Benchmark the runtime hot path: /active (200 and 304) and /render, cached and uncached.

Starts `chatver serve` twice on loopback with a throwaway SQLite database — once with the
resolution cache (default TTL) and once with CHATVER_CACHE_TTL_SECONDS=0, so every request
goes to the database — then drives each endpoint with concurrent keep-alive clients and
prints a table of throughput and latency percentiles (load from wrk: apt-get install wrk).

    .venv/bin/python scripts/bench/active.py [--seconds 10] [--connections 32]

Numbers are from one 2-core machine where the load generator shares the CPU with the
server, so compare rows with each other rather than with other machines.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import seed, start_server, wrk


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each row")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install -y wrk")
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="chatver-bench-") as tmp:
        workdir = Path(tmp)
        for label, ttl in (("cached", 2.0), ("uncached (TTL 0)", 0.0)):
            server = start_server(workdir, label.split()[0], ttl)
            try:
                runtime = seed(server)
                etag = httpx.get(f"{server.url}/api/bundles/support-bot/active", headers=runtime).headers[
                    "etag"
                ]
                active = "/api/bundles/support-bot/active"
                cases = [
                    ("GET /active → 200", active, runtime, None),
                    ("GET /active → 304", active, {**runtime, "If-None-Match": etag}, None),
                    (
                        "POST /render",
                        "/api/bundles/support-bot/render",
                        runtime,
                        '{"variables": {"tone": "warm"}}',
                    ),
                    ("GET /healthz (floor)", "/healthz", {}, None),
                ]
                for name, path, headers, body in cases:
                    rows.append(
                        (label, name, wrk(server.url + path, headers, body, args.seconds, args.connections))
                    )
                    print(f"  {label:18} {name:22} {rows[-1][2]['rps']:,.0f} req/s", file=sys.stderr)
            finally:
                server.process.terminate()
                server.process.wait(10)
    print(
        f"\nwrk, {args.connections} keep-alive connections, {args.seconds}s per row; "
        "chatver serve with 1 worker on SQLite; client and server share 2 cores\n"
    )
    print("| server | request | req/s | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for label, name, r in rows:
        print(f"| {label} | {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
