"""Shared pieces of the benchmarks: start chatver on loopback, seed a bundle, drive wrk."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def start_server(workdir: Path, name: str, ttl: float, extra_env: dict[str, str] | None = None) -> Server:
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
    env.update(extra_env or {})
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


def seed(server: Server, params: dict[str, Any] | None = None) -> dict[str, str]:
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
            "params": params or {"temperature": 0.2, "max_tokens": 512},
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
