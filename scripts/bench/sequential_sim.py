"""Peeking safety and power of chatver's experiment decisions, by simulation.

Repeated A/B experiments on a binary metric, checked after every batch of traffic (as a team
that looks at the dashboard every day would). For each true effect it reports how often an
experiment was ever declared significant by
  - chatver's rule: the always-valid confidence sequence excludes 0, and
  - naive peeking: a fixed-horizon p < 0.05 at any look.
With no effect (A/A) that share is the false-positive rate, which must stay at or below 5%;
with an effect it is the power. Seeded, so the table is reproducible.

    .venv/bin/python scripts/bench/sequential_sim.py [--experiments 2000] [--looks 30] [--batch 100]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.experiments.stats import Sample, relative_lift


def run(
    rate_c: float, rate_t: float, experiments: int, looks: int, batch: int, seed: int
) -> tuple[float, float, float]:
    rng = random.Random(seed)
    sequential_hits = naive_hits = 0
    stop_looks: list[int] = []
    for _ in range(experiments):
        sums = [0, 0]
        n = 0
        sequential = naive = False
        for look in range(1, looks + 1):
            n += batch
            sums[0] += sum(rng.random() < rate_c for _ in range(batch))
            sums[1] += sum(rng.random() < rate_t for _ in range(batch))
            result = relative_lift(
                Sample.from_sums(n, sums[0], sums[0]), Sample.from_sums(n, sums[1], sums[1])
            )
            if result is None:
                continue
            if result.significant and not sequential:
                sequential = True
                stop_looks.append(look)
            naive = naive or result.p_value < 0.05
        sequential_hits += sequential
        naive_hits += naive
    mean_stop = sum(stop_looks) / len(stop_looks) if stop_looks else math.nan
    return sequential_hits / experiments, naive_hits / experiments, mean_stop


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--looks", type=int, default=30)
    parser.add_argument("--batch", type=int, default=100, help="new subjects per arm between looks")
    parser.add_argument("--base-rate", type=float, default=0.30)
    args = parser.parse_args()
    print(
        f"\n{args.experiments} experiments per row, {args.looks} looks, "
        f"{args.batch} subjects per arm per look (up to {args.looks * args.batch:,} per arm), "
        f"control rate {args.base_rate}\n"
    )
    print(
        "| true relative effect | chatver (always-valid) | naive peeking (p<0.05 at any look) "
        "| mean look of decision |"
    )
    print("|---:|---:|---:|---:|")
    for effect in (0.0, 0.05, 0.10, 0.15, 0.20, 0.30):
        started = time.perf_counter()
        chatver, naive, stop = run(
            args.base_rate,
            args.base_rate * (1 + effect),
            args.experiments,
            args.looks,
            args.batch,
            seed=int(effect * 1000) + 1,
        )
        se = math.sqrt(chatver * (1 - chatver) / args.experiments)
        label = "A/A (false positives)" if effect == 0 else f"+{effect:.0%}"
        print(f"| {label} | {chatver:.1%} ± {1.96 * se:.1%} | {naive:.1%} | {stop:.1f} |", flush=True)
        print(f"  ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
