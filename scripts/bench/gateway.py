"""Benchmark the chat gateway's own overhead against a loopback upstream.

Starts a fake OpenAI-compatible upstream and `chatver serve` (SQLite, events written in
batches), then drives with wrk: the upstream directly (the floor), and the same chat
request through chatver's /v1/chat/completions with the bundle's system prompt rendered,
the call routed through LiteLLM and attributed. The difference is what chatver adds.

    apt-get install -y wrk
    .venv/bin/python scripts/bench/gateway.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import free_port, seed, start_server, wrk

PYTHON = sys.executable


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install -y wrk")
    port = free_port()
    upstream_url = f"http://127.0.0.1:{port}"
    fake = subprocess.Popen([PYTHON, str(Path(__file__).parent / "fake_upstream.py"), "--port", str(port)])
    rows = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{upstream_url}/v1/chat/completions", json={"messages": []}, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("fake upstream did not start") from None
                time.sleep(0.2)
        message = {"role": "user", "content": "Where is my order?"}
        direct = json.dumps({"model": "gpt-4o-mini", "messages": [message]})
        rows.append(
            (
                "upstream directly (floor)",
                wrk(f"{upstream_url}/v1/chat/completions", {}, direct, args.seconds, args.connections),
            )
        )
        with tempfile.TemporaryDirectory(prefix="chatver-bench-") as tmp:
            server = start_server(
                Path(tmp),
                "gateway",
                2.0,
                {
                    "CHATVER_ALLOWED_API_BASES": upstream_url,
                    "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-bench"),
                },
            )
            try:
                runtime = seed(
                    server, {"temperature": 0.2, "max_tokens": 256, "api_base": f"{upstream_url}/v1"}
                )
                body = {"model": "support-bot", "messages": [message], "prompt_variables": {"tone": "warm"}}
                check = httpx.post(
                    f"{server.url}/v1/chat/completions", json=body, headers=runtime, timeout=30
                )
                check.raise_for_status()
                url = f"{server.url}/v1/chat/completions"
                rows.append(
                    (
                        "through chatver, non-streaming",
                        wrk(url, runtime, json.dumps(body), args.seconds, args.connections),
                    )
                )
                streamed = json.dumps({**body, "stream": True})
                rows.append(
                    (
                        "through chatver, streaming",
                        wrk(url, runtime, streamed, args.seconds, args.connections),
                    )
                )
                metrics = httpx.get(
                    f"{server.url}/api/bundles/support-bot/versions/1/metrics", headers=runtime, timeout=30
                ).json()
            finally:
                server.process.terminate()
                server.process.wait(15)
    finally:
        fake.terminate()
        fake.wait(10)
    print(
        f"\nwrk, {args.connections} connections, {args.seconds}s per row; chatver: 1 worker, SQLite; "
        "everything on one 2-core machine\n"
    )
    print("| path | req/s | p50 ms | p90 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} |")
    print(
        f"\nevents attributed to support-bot@1 at the end: {metrics['requests']:,} "
        f"(errors {metrics['errors']}); p50 latency recorded {metrics['latency_ms']['p50']} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
