"""Near-duplicate groups on photo-like data that breaks naive grouping: shared logos, flat skin, altered copies.

Run from the repository root (no database needed):

    .venv/bin/python bench/dedup_realistic.py                   # 3,000 distinct photos
    .venv/bin/python bench/dedup_realistic.py --photos 600      # a quicker run

What it generates (seeded, so every run is the same):

- distinct photo-like images of 480-800 px: skin of varied tone under uneven light, with
  mottling, pores and noise; most carry one to five lesions and sometimes hairs, and a
  share (``--flat``, default 35 %) are nearly uniform skin with no lesion at all;
- the same corner logo on most of them (``--logo``, default 80 %), pasted at a fixed pixel
  size in the bottom-right corner, as a public atlas marks its photos; a caption bar on some;
- true copies of a share of them (``--copied``, default 20 %), one to three each, every copy
  altered by one or more of: re-encoded (JPEG q60-95), resized (50-150 %), recropped (up to
  10 % of each side's length, placed anywhere), recoloured (brightness, contrast, saturation,
  a hue turn), re-shared with the logo or a caption added.

Every file goes through ``curation.imaging.process_image_bytes``, as an import would, and
both methods work on what the import stores. A pair counts as a true copy when both files come
from the same distinct photo. For each method: precision = true copies among the pairs that
share a group; recall = true-copy pairs that share a group, of all of them.

- before: pHash ≤ 10, confirmed by dHash ≤ 12, connected components (the method up to this
  change);
- now: ``curation.dedup.verified_duplicate_groups``, the app's method (see its docstring).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation import dedup
from curation.demo_images import ALTERATIONS, altered, atlas_photo, jpeg, with_caption, with_logo
from curation.imaging import process_image_bytes


def make_photo_set(index: int, options: dict) -> list[tuple[int, dict]]:
    """The files of distinct photo `index`: its own file and its altered copies, as stored hashes."""
    rng = np.random.default_rng(10_000 + index)
    flat = rng.random() < options["flat"]
    original = atlas_photo(index, flat=flat)
    if rng.random() < options["caption"]:
        original = with_caption(original, f"Case {index}: {'plaque' if index % 2 else 'patch'}, left forearm")
    published = with_logo(original) if rng.random() < options["logo"] else original
    files = [jpeg(published, int(rng.integers(80, 96)))]
    if rng.random() < options["copied"]:
        for _ in range(int(rng.integers(1, 4))):
            kinds = list(rng.choice(ALTERATIONS, size=int(rng.integers(1, 3)), replace=False))
            # A copy re-shared with a logo starts from the photo before the atlas marked it.
            source = original if "logo_added" in kinds else published
            files.append(altered(source, kinds, rng))
    out = []
    for data in files:
        processed = process_image_bytes(data)
        out.append(
            (
                index,
                {
                    "phash": processed.phash,
                    "dhash": processed.dhash,
                    "fingerprint": processed.fingerprint,
                    "flat": flat,
                },
            )
        )
    return out


def pair_scores(groups: list[np.ndarray], truth: np.ndarray) -> tuple[float, float, int, int, int]:
    """(precision, recall, grouped pairs, true pairs, largest group) over index pairs."""
    grouped = 0
    correct = 0
    for members in groups:
        for i, j in combinations(members.tolist(), 2):
            grouped += 1
            correct += truth[i] == truth[j]
    sizes = Counter(truth.tolist())
    true_pairs = sum(k * (k - 1) // 2 for k in sizes.values())
    precision = correct / grouped if grouped else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    largest = max((len(g) for g in groups), default=0)
    return precision, recall, grouped, true_pairs, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=3000, help="distinct photos")
    parser.add_argument("--logo", type=float, default=0.8, help="share of photos with the corner logo")
    parser.add_argument("--flat", type=float, default=0.35, help="share of nearly uniform skin photos")
    parser.add_argument("--caption", type=float, default=0.1, help="share with a caption bar")
    parser.add_argument("--copied", type=float, default=0.2, help="share of photos with altered copies")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    arguments = parser.parse_args()
    options = {key: getattr(arguments, key) for key in ("logo", "flat", "caption", "copied")}

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=arguments.workers) as pool:
        sets = list(pool.map(make_photo_set, range(arguments.photos), [options] * arguments.photos, chunksize=16))
    rows = [row for photo_set in sets for row in photo_set]
    truth = np.array([index for index, _ in rows])
    phash = np.array([row["phash"] for _, row in rows], dtype=np.int64)
    dhash = np.array([row["dhash"] for _, row in rows], dtype=np.int64)
    fingerprints = np.stack([np.frombuffer(row["fingerprint"], dtype=np.uint8) for _, row in rows])
    flat = np.array([row["flat"] for _, row in rows])
    copies = len(rows) - arguments.photos
    print(
        f"{arguments.photos} distinct photos ({flat[np.unique(truth, return_index=True)[1]].mean():.0%} flat skin, "
        f"logo on {arguments.logo:.0%}), {copies} altered copies, {len(rows)} files; "
        f"generated and processed in {time.perf_counter() - started:.1f} s"
    )

    results = []
    started = time.perf_counter()
    before = dedup.duplicate_groups(phash, 10, confirm=dhash, confirm_threshold=12)
    results.append(("before: pHash ≤ 10 + dHash ≤ 12, connected components", before, time.perf_counter() - started))
    started = time.perf_counter()
    now = dedup.verified_duplicate_groups(fingerprints)
    results.append(("now: verified fingerprints, complete linkage", now.groups, time.perf_counter() - started))

    print()
    print("| method | precision | recall | pairs grouped | true-copy pairs | groups | largest group | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, groups, seconds in results:
        precision, recall, grouped, true_pairs, largest = pair_scores(groups, truth)
        print(
            f"| {name} | {precision:.1%} | {recall:.1%} | {grouped:,} | {true_pairs:,} | {len(groups):,} | "
            f"{largest} | {seconds:.2f} |"
        )
    print(f"\nnow: {now.candidates:,} candidate pairs checked, {now.verified:,} verified")

    # Where the methods go wrong, by kind of photo.
    print("\n| method | false pairs among flat-skin photos | false pairs with a lesion | missed copies of flat skin |")
    print("|---|---|---|---|")
    for name, groups, _ in results:
        false_flat = false_lesion = 0
        for members in groups:
            for i, j in combinations(members.tolist(), 2):
                if truth[i] != truth[j]:
                    if flat[i] and flat[j]:
                        false_flat += 1
                    else:
                        false_lesion += 1
        together = {}
        for number, members in enumerate(groups):
            together.update(dict.fromkeys(members.tolist(), number))
        by_photo: dict[int, list[int]] = {}
        for index, photo_index in enumerate(truth.tolist()):
            by_photo.setdefault(photo_index, []).append(index)
        missed_flat = sum(
            1
            for members in by_photo.values()
            if flat[members[0]]
            for i, j in combinations(members, 2)
            if together.get(i, -1 - i) != together.get(j, -2 - j)
        )
        print(f"| {name.split(':')[0]} | {false_flat} | {false_lesion} | {missed_flat} |")


if __name__ == "__main__":
    main()
