"""How much CPU one call costs inside LiteLLM alone, against the loopback fake upstream.

Sequential calls, so the number is per-call latency with nothing else running:
LiteLLM's Router (as chatver uses it) and plain litellm.acompletion.

    .venv/bin/python scripts/bench/litellm_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench")

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import free_port


async def measure(base: str, calls: int) -> dict[str, float]:
    import litellm
    from litellm.router import Router
    from litellm.router_api import ChangeSet
    from litellm.types.router import Deployment, LiteLLM_Params

    router = Router(model_list=[], disable_cooldowns=True, num_retries=2)
    params = LiteLLM_Params(model="openai/gpt-4o-mini", api_base=base)
    router.apply(
        ChangeSet(upsert=[Deployment(model_name="b@1", litellm_params=params, model_info={"id": "b@1"})])
    )
    messages = [{"role": "user", "content": "hi"}]
    results = {}
    for name, call in (
        (
            "raw httpx POST (floor)",
            lambda: httpx_client.post(f"{base}/chat/completions", json={"messages": messages}),
        ),
        (
            "litellm.acompletion",
            lambda: litellm.acompletion(model="openai/gpt-4o-mini", api_base=base, messages=messages),
        ),
        ("Router.acompletion (chatver's path)", lambda: router.acompletion(model="b@1", messages=messages)),
    ):
        for _ in range(20):
            await call()
        started = time.perf_counter()
        for _ in range(calls):
            await call()
        results[name] = (time.perf_counter() - started) / calls * 1000
    return results


httpx_client = httpx.AsyncClient()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fake_upstream.py"), "--port", str(port)]
    )
    try:
        time.sleep(2)
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.calls))
    finally:
        fake.terminate()
        fake.wait(10)
    print(f"\n{args.calls} sequential non-streaming calls each\n")
    print("| call | ms per call |")
    print("|---|---:|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
