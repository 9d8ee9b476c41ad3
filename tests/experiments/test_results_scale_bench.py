"""The results-at-scale benchmark still runs end to end (a tiny size of it, on the suite's PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import POSTGRES_URL, _need

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_loads_times_and_checks_its_own_numbers() -> None:
    if not POSTGRES_URL:
        _need("PostgreSQL", "CHATVER_TEST_POSTGRES_URL")
    assert POSTGRES_URL
    run = subprocess.run(
        [
            sys.executable,
            "scripts/bench/results_scale.py",
            "--events=3000",
            "--subjects=300",
            "--rollouts=600/200",
            "--timeout=240",
            f"--postgres-url={POSTGRES_URL}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = run.stdout
    assert "| Σ arm subjects | 300 | 300 | ✅ |" in report, report
    assert "| Σ arm requests | 3,000 | 3,000 | ✅ |" in report, report
    assert "❌" not in report, report
    assert "| 600 | 200 |" in report, report
