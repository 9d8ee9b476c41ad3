"""The README's curl walkthrough runs as written against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, IN_CI, bearer

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A five-minute walkthrough", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the walkthrough has no bash block"
    return match.group(1)


@pytest.fixture
def shell_tools() -> None:
    if not (shutil.which("curl") and shutil.which("jq")):
        if IN_CI:
            pytest.fail("curl and jq are needed; scripts/test.sh installs them")
        pytest.skip("curl and jq are not installed (scripts/test.sh installs them)")


def test_readme_walkthrough_runs_and_ends_rolled_back(
    shell_tools: None, server_url: str, tmp_path: Path
) -> None:
    script = walkthrough()
    # Same commands, but fail on the first HTTP error instead of printing it and going on.
    script = script.replace("alias cv='curl -sS ", "alias cv='curl -sS --fail-with-body ")
    script = re.sub(r'^export CV=\S+ ADMIN="[^"]*".*$', "", script, flags=re.M)
    runner = tmp_path / "walkthrough.sh"
    runner.write_text("set -euo pipefail\nshopt -s expand_aliases\n" + script, encoding="utf-8")
    result = subprocess.run(
        ["bash", str(runner)],
        env={**os.environ, "CV": server_url, "ADMIN": ADMIN_KEY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"faq-bot@1"' in result.stdout
    active = httpx.get(f"{server_url}/api/bundles/faq-bot/active", headers=bearer(ADMIN_KEY)).json()
    assert active["version_id"] == "faq-bot@1"
    history = httpx.get(f"{server_url}/api/bundles/faq-bot/history", headers=bearer(ADMIN_KEY)).json()
    assert [h["kind"] for h in history[:2]] == ["rollback", "rollback"]
