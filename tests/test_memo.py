"""The hot-path cache: stale-while-revalidate, single-flight loads, invalidation races."""

from __future__ import annotations

import asyncio
import threading
import time

from app.memo import Memo


class Loader:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.value = "v1"
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key: str) -> str:
        self.calls += 1
        self.release.wait(5)
        time.sleep(self.delay)
        return f"{key}:{self.value}"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


class TestMemo:
    def test_fresh_entries_are_served_without_loading(self) -> None:
        loader = Loader()
        memo: Memo[str, str] = Memo(loader, ttl=60)

        async def scenario() -> list[str]:
            return [await memo.get("a") for _ in range(5)]

        assert run(scenario()) == ["a:v1"] * 5
        assert loader.calls == 1

    def test_concurrent_misses_load_once(self) -> None:
        loader = Loader(delay=0.05)
        memo: Memo[str, str] = Memo(loader, ttl=60)

        async def scenario() -> list[str]:
            return await asyncio.gather(*(memo.get("a") for _ in range(20)))

        assert run(scenario()) == ["a:v1"] * 20
        assert loader.calls == 1

    def test_expired_entry_is_served_stale_while_one_refresh_runs(self) -> None:
        loader = Loader()
        memo: Memo[str, str] = Memo(loader, ttl=0.05)

        async def scenario() -> tuple[list[str], int, str]:
            await memo.get("a")
            await asyncio.sleep(0.06)
            loader.value = "v2"
            stale = await asyncio.gather(*(memo.get("a") for _ in range(10)))
            await asyncio.gather(*memo._tasks)  # let the one background refresh finish
            calls = loader.calls
            return stale, calls, await memo.get("a")

        stale, calls, fresh = run(scenario())
        assert stale == ["a:v1"] * 10
        assert calls == 2  # one load, one refresh for ten concurrent readers
        assert fresh == "a:v2"

    def test_invalidation_during_a_load_is_not_overwritten(self) -> None:
        loader = Loader()
        memo: Memo[str, str] = Memo(loader, ttl=60)

        async def scenario() -> str:
            loader.release.clear()
            slow = asyncio.ensure_future(memo.get("a"))
            await asyncio.sleep(0.02)
            memo.invalidate(lambda key: key == "a")  # a write committed while we were reading
            loader.value = "v2"
            loader.release.set()
            await slow
            return await memo.get("a")

        assert run(scenario()) == "a:v2"
        assert loader.calls == 2

    def test_a_failed_load_raises_to_every_waiter_and_is_retried(self) -> None:
        calls = 0

        def flaky(key: str) -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                time.sleep(0.02)
                raise RuntimeError("db down")
            return key

        memo: Memo[str, str] = Memo(flaky, ttl=60)

        async def scenario() -> str:
            results = await asyncio.gather(*(memo.get("a") for _ in range(3)), return_exceptions=True)
            assert all(isinstance(r, RuntimeError) for r in results)
            return await memo.get("a")

        assert run(scenario()) == "a"

    def test_invalidate_only_drops_matching_keys(self) -> None:
        loader = Loader()
        memo: Memo[str, str] = Memo(loader, ttl=60)

        async def scenario() -> None:
            await memo.get("a")
            await memo.get("b")
            memo.invalidate(lambda key: key == "a")
            await memo.get("a")
            await memo.get("b")

        run(scenario())
        assert loader.calls == 3


def test_zero_ttl_turns_caching_off() -> None:
    loader = Loader()
    memo: Memo[str, str] = Memo(loader, ttl=0)

    async def scenario() -> list[str]:
        first = await memo.get("a")
        loader.value = "v2"
        return [first, await memo.get("a")]

    assert run(scenario()) == ["a:v1", "a:v2"]
    assert loader.calls == 2
