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
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHATVER = str(ROOT / ".venv" / "bin" / "chatver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    admin: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(workdir: Path, name: str, ttl: float) -> Server:
    port, admin = free_port(), "cv_bench_" + secrets.token_urlsafe(24)
    log = workdir / f"{name}.log"
    env = {
        **os.environ,
        "CHATVER_DATABASE_URL": f"sqlite:///{workdir / name}.db",
        "CHATVER_ADMIN_KEY": admin,
        "CHATVER_CACHE_TTL_SECONDS": str(ttl),
        "CHATVER_LOG_LEVEL": "warning",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("CHATVER_REDIS_URL", None)
    process = subprocess.Popen(
        [CHATVER, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, admin, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{name} server did not start; see {log}")


def seed(server: Server) -> dict[str, str]:
    """A bundle with v1 in production; returns headers of a runtime key."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        admin = {"Authorization": f"Bearer {server.admin}"}
        keys = {}
        for name, role in (("editor", "editor"), ("approver", "approver"), ("runtime", "runtime")):
            response = http.post("/api/keys", json={"name": name, "role": role}, headers=admin)
            response.raise_for_status()
            keys[name] = {"Authorization": f"Bearer {response.json()['key']}"}
        http.post("/api/bundles", json={"name": "support-bot"}, headers=keys["editor"]).raise_for_status()
        body = {
            "model": "openai/gpt-4o-mini",
            "system_prompt": "You are {{ company }}'s support agent. Answer in a {{ tone }} tone.\n" * 20,
            "variables": {"company": {"default": "Acme"}, "tone": {"required": True}},
            "params": {"temperature": 0.2, "max_tokens": 512},
        }
        http.post("/api/bundles/support-bot/versions", json=body, headers=keys["editor"]).raise_for_status()
        for stage in ("staging", "validation"):
            http.post(
                "/api/bundles/support-bot/versions/1/transitions", json={"to": stage}, headers=keys["editor"]
            ).raise_for_status()
        http.post(
            "/api/bundles/support-bot/versions/1/approvals", json={}, headers=keys["approver"]
        ).raise_for_status()
        http.post(
            "/api/bundles/support-bot/versions/1/transitions",
            json={"to": "production"},
            headers=keys["approver"],
        ).raise_for_status()
        return keys["runtime"]


def wrk(
    url: str, headers: dict[str, str], body: str | None, seconds: int, connections: int
) -> dict[str, float]:
    """Run wrk against one URL; returns req/s and latency percentiles in ms."""
    lines = [f'wrk.method = "{"POST" if body else "GET"}"']
    if body:
        lines += [f"wrk.body = [[{body}]]", "wrk.headers['Content-Type'] = 'application/json'"]
    lines += [f"wrk.headers['{name}'] = [[{value}]]" for name, value in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if "Non-2xx or 3xx responses" in output:
        raise SystemExit(f"{url}: wrk saw error responses\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rps, output
    result = {"rps": float(rps.group(1))}
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert match, output
        value, unit = float(match.group(1)), match.group(2)
        result[f"p{pct}"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return result


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
