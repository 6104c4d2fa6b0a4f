"""Benchmark the near-duplicate search against numpy brute force, and check it misses no planted pair.

Run from the repository root:

    .venv/bin/python bench/dedup.py                # 30k and 100k, thresholds 8 and 12
    .venv/bin/python bench/dedup.py --sizes 30000  # a quicker run

For each size: uniform random 64-bit hashes where 5 % of the items get 1-3
copies with 0..threshold random bits flipped (written over other items, so the
count stays exact), plus a clustered set like many photos of one kind of lesion
(n / 300 centres, each hash 0..14 bits away from its centre). Columns:

- auto: ``near_duplicate_pairs`` as the app calls it (planning included; best of 2 runs);
- tiled brute: ``method="brute_force"`` (the fallback: XOR + popcount tiles, 2 threads);
- naive numpy: the obvious baseline, one thread, 256 rows at a time against all
  later columns, ``np.nonzero`` on the mask. Above 30k hashes it is estimated from
  a timed sample of row blocks spread over the triangle (marked "est.").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation import dedup

NAIVE_ROWS = 256
NAIVE_MEASURED_UP_TO = 30_000
NAIVE_SAMPLE_BLOCKS = 24


def planted(n: int, threshold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random hashes with planted near copies; returns the hashes and the (original, copy) index pairs."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64, n, dtype=np.uint64)
    positions = rng.permutation(n)
    originals = positions[: n // 20]
    free = iter(positions[n // 20 :])
    pairs = []
    for original in originals:
        for _ in range(rng.integers(1, 4)):
            copy = next(free)
            bits = rng.choice(64, size=rng.integers(0, threshold + 1), replace=False)
            mask = np.uint64(sum(1 << int(bit) for bit in bits))
            values[copy] = values[original] ^ mask
            pairs.append((min(original, copy), max(original, copy)))
    return values, np.array(pairs, dtype=np.int64)


def clustered(n: int, seed: int, max_flips: int = 14) -> np.ndarray:
    """Hashes around n / 300 centres (about 300 each, like many photos of one kind), 0..14 bits from their centre."""
    rng = np.random.default_rng(seed)
    centres = max(1, n // 300)
    values = rng.integers(0, 2**64, centres, dtype=np.uint64)[rng.integers(0, centres, n)]
    flips = rng.integers(0, max_flips + 1, n)
    for step in range(max_flips):
        bit = np.left_shift(np.uint64(1), rng.integers(0, 64, n).astype(np.uint64))
        values ^= np.where(flips > step, bit, np.uint64(0))
    return values


def naive_block(values: np.ndarray, start: int, threshold: int) -> int:
    rows = values[start : start + NAIVE_ROWS]
    close = np.bitwise_count(rows[:, None] ^ values[None, start:]) <= threshold
    i, j = np.nonzero(close)
    return int(((j + start) > (i + start)).sum())


def naive_seconds(values: np.ndarray, threshold: int) -> tuple[float, bool]:
    """Seconds for the naive baseline: measured in full up to 30k hashes, else estimated from sampled blocks."""
    n = len(values)
    starts = list(range(0, n, NAIVE_ROWS))
    if n <= NAIVE_MEASURED_UP_TO:
        began = time.perf_counter()
        for start in starts:
            naive_block(values, start, threshold)
        return time.perf_counter() - began, False
    sampled = [starts[int(k)] for k in np.linspace(0, len(starts) - 1, NAIVE_SAMPLE_BLOCKS)]
    elements = sum(min(NAIVE_ROWS, n - s) * (n - s) for s in sampled)
    began = time.perf_counter()
    for start in sampled:
        naive_block(values, start, threshold)
    per_element = (time.perf_counter() - began) / elements
    total_elements = sum(min(NAIVE_ROWS, n - s) * (n - s) for s in starts)
    return per_element * total_elements, True


def timed(function, *args, **kwargs):
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - began


def describe_plan(values: np.ndarray, threshold: int) -> str:
    plan = dedup._plan(values, threshold, allow_brute_force=True)
    if plan is None:
        return "brute force"
    return "MIH " + "/".join(f"{bits}b:r{radius}" for _, bits, radius in plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--thresholds", type=int, nargs="+", default=[8, 12])
    parser.add_argument("--skip-brute-above", type=int, default=100_000, help="skip the tiled brute force above n")
    arguments = parser.parse_args()

    print(
        "| n | data | t | plan chosen | pairs | planted recall | auto s | tiled brute s | naive numpy s "
        "| vs naive | vs tiled |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in arguments.sizes:
        for threshold in arguments.thresholds:
            for kind in ("planted", "clustered"):
                if kind == "planted":
                    values, expected = planted(n, threshold, seed=n + threshold)
                else:
                    values, expected = clustered(n, seed=n + threshold), None
                dedup.near_duplicate_pairs(values[:2000], threshold)  # warm the flip-mask cache and imports
                pairs, auto_seconds = timed(dedup.near_duplicate_pairs, values, threshold)
                auto_seconds = min(auto_seconds, timed(dedup.near_duplicate_pairs, values, threshold)[1])
                recall = "-"
                if expected is not None:
                    found = np.isin(expected[:, 0] * n + expected[:, 1], pairs[:, 0] * n + pairs[:, 1])
                    recall = f"{found.mean():.2%} of {len(expected)}"
                brute_seconds = "skipped"
                if n <= arguments.skip_brute_above:
                    brute, seconds = timed(dedup.near_duplicate_pairs, values, threshold, method="brute_force")
                    if not np.array_equal(brute, pairs):
                        raise SystemExit(f"brute force and auto disagree at n={n}, t={threshold}, {kind}")
                    brute_seconds = f"{seconds:.2f}"
                    versus_tiled = f"{seconds / auto_seconds:.1f}x"
                else:
                    versus_tiled = "-"
                naive, estimated = naive_seconds(values, threshold)
                print(
                    f"| {n:,} | {kind} | {threshold} | {describe_plan(values, threshold)} | {len(pairs):,} | {recall} "
                    f"| {auto_seconds:.2f} | {brute_seconds} | {naive:.1f}{' est.' if estimated else ''} "
                    f"| {naive / auto_seconds:.0f}x | {versus_tiled} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
