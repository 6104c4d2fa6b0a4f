"""Near-duplicate search: 64-bit perceptual hashes, verified fingerprints, and groups without chaining.

Pure numpy / scipy with no Django import.

The app's groups come from ``verified_duplicate_groups`` (see its docstring): candidates from a
small embedding of each image's 64 × 64 fingerprint that ignores borders and overlays, each
candidate verified by aligning the two fingerprints and comparing them block by block, and groups
in which every pair is a verified near copy (complete linkage). bench/dedup_realistic.py measures
it against the pHash-only method on photos with shared logos and flat skin (bench/RESULTS.md).

The rest of this docstring is about the pHash search (``near_duplicate_pairs``). Hashes come as 1-D int64 (the signed
values PostgreSQL stores) or uint64 arrays; only their 64 bits matter.

``near_duplicate_pairs`` is exact: it returns every pair i < j whose Hamming
distance is at most the threshold, and nothing else. It uses multi-index
hashing with the generalised pigeonhole principle: cut the 64 bits into m
substrings and give substring c a radius r_c with sum(r_c + 1) >= t + 1; two
hashes within distance t then differ by at most r_c bits in at least one
substring c. Per substring the hashes are sorted by its value (counting-sort
buckets); each pair of buckets whose values differ by at most r_c bits is
visited once, from the smaller value, for a block of hashes at a time; every
candidate pair is checked with XOR + popcount, and a pair within reach of an
earlier substring is left to that one, so nothing is reported twice.

The cut and the radii are chosen by estimated cost (probes counted exactly,
candidates from a sample), so clustered hashes with crowded buckets price
themselves out; when comparing everything is cheaper (few hashes, or hashes so
clustered that most pairs are candidates), a tiled brute force (XOR +
``np.bitwise_count``) runs instead. Work is cut into blocks, so memory stays
bounded apart from the answer itself, and spread over threads: numpy releases
the GIL inside its kernels.
"""

from __future__ import annotations

import operator
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components as _scipy_connected_components

HASH_BITS = 64
_MASK64 = (1 << HASH_BITS) - 1

# Relative costs per unit of work, measured on a 2-core machine with numpy 2.4
# (see bench/dedup.py): sorting one hash into one substring's buckets, one
# (hash, flip mask) probe, one candidate pair checked, one pair of the brute force.
_COST_PER_SUBSTRING = 500.0
_COST_PER_PROBE = 20.0
_COST_PER_CANDIDATE = 10.0
_COST_PER_BRUTE_PAIR = 1.0
_SAMPLE_SIZE = 1024
_SAMPLE_WORK = 1 << 18  # sampled (hash, flip mask) lookups per estimate
_MAX_SUBSTRING_BITS = 22
# Elements per temporary array of one block: about 1 MB per int64 array, small enough to stay
# in cache and to be reused by the allocator (fresh large arrays in two threads fault pages in
# and cost more than they save; 2**17 was about 1.5x faster than 2**21 on 100k hashes).
_BLOCK_WORK = 1 << 17
_BRUTE_TILE = (64, 16384)  # rows x columns compared at once by the brute force (8 MB of XOR)
_BRUTE_FORCE_BELOW = 8192  # hashes; below this planning costs more than comparing everything

_EMPTY_PAIRS = np.empty((0, 2), dtype=np.int64)


def hamming_distance(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes, signed or unsigned."""
    return ((a ^ b) & _MASK64).bit_count()


def near_duplicate_pairs(
    hashes: np.ndarray, threshold: int, *, method: str = "auto", workers: int | None = None
) -> np.ndarray:
    """Every index pair (i, j), i < j, with popcount(h[i] ^ h[j]) <= threshold: int64 (k, 2), sorted.

    ``method`` is "auto" (multi-index hashing unless comparing everything is
    estimated to be cheaper), "multi_index" or "brute_force"; all three give
    the same pairs. ``workers`` threads share the work (default: up to 2).
    """
    values = as_uint64(hashes)
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    if method not in ("auto", "multi_index", "brute_force"):
        raise ValueError(f"unknown method {method!r}")
    n = len(values)
    if n < 2:
        return _EMPTY_PAIRS.copy()
    workers = workers or min(2, os.cpu_count() or 1)
    plan = None if method == "brute_force" else _plan(values, threshold, allow_brute_force=method == "auto")
    if plan is None:
        pieces = _brute_force_pairs(values, threshold, workers)
    else:
        pieces = _multi_index_pairs(values, threshold, plan, workers)
    return _sorted_pairs(pieces, n)


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """A component label (0..k-1) per index; indices joined by a chain of pairs share one."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    graph = coo_array(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(n, n),
    ).tocsr()
    _, labels = _scipy_connected_components(graph, directed=False)
    return labels.astype(np.int64, copy=False)


def duplicate_groups(
    hashes: np.ndarray,
    threshold: int,
    *,
    excluded_pairs: set[tuple[int, int]] | None = None,
    confirm: np.ndarray | None = None,
    confirm_threshold: int | None = None,
) -> list[np.ndarray]:
    """Groups of two or more indices linked by near-duplicate pairs.

    A pair counts when its hashes are within ``threshold``, it is not one of
    ``excluded_pairs`` (pairs a curator marked "not duplicates", in either
    order), and, when ``confirm`` (a second hash per index, e.g. dHash) is
    given, those are within ``confirm_threshold`` too. Groups are connected
    components, so an excluded pair still ends up in one group when a third
    image links both. Each group's indices are ascending; groups are ordered
    by their smallest index.
    """
    values = as_uint64(hashes)
    n = len(values)
    second = None
    if confirm is not None:
        if confirm_threshold is None:
            raise ValueError("confirm_threshold is required with confirm")
        second = as_uint64(confirm)
        if len(second) != n:
            raise ValueError(f"confirm has {len(second)} hashes for {n} images")
    pairs = near_duplicate_pairs(values, threshold)
    if second is not None and len(pairs):
        distances = np.bitwise_count(second[pairs[:, 0]] ^ second[pairs[:, 1]])
        pairs = pairs[distances <= confirm_threshold]
    if excluded_pairs and len(pairs):
        excluded = np.array([(min(i, j), max(i, j)) for i, j in excluded_pairs], dtype=np.int64).reshape(-1, 2)
        keep = ~np.isin(pairs[:, 0] * n + pairs[:, 1], excluded[:, 0] * n + excluded[:, 1])
        pairs = pairs[keep]
    if not len(pairs):
        return []
    labels = connected_components(n, pairs)
    order = np.argsort(labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [group for group in np.split(order, boundaries) if len(group) >= 2]
    groups.sort(key=lambda group: int(group[0]))
    return groups


def as_uint64(hashes) -> np.ndarray:
    """A 1-D uint64 array of signed or unsigned 64-bit hashes (a view, not a copy, for int64/uint64 arrays).

    Sequences of Python ints (e.g. from ``values_list``) are converted exactly,
    including unsigned values above 2**63 that numpy would turn into floats.
    """
    if not isinstance(hashes, np.ndarray):
        items = list(hashes)
        return np.fromiter((operator.index(item) & _MASK64 for item in items), dtype=np.uint64, count=len(items))
    if hashes.ndim != 1:
        raise ValueError(f"hashes must be one-dimensional, got shape {hashes.shape}")
    if hashes.dtype == np.uint64:
        return hashes
    if hashes.dtype == np.int64:
        return hashes.view(np.uint64)
    if hashes.dtype.kind in "iu":
        return hashes.astype(np.int64).view(np.uint64)
    if hashes.dtype == object:
        return np.fromiter((operator.index(item) & _MASK64 for item in hashes), dtype=np.uint64, count=len(hashes))
    raise TypeError(f"hashes must be integers, got {hashes.dtype}")


# --- multi-index hashing -----------------------------------------------------------------------------------------


class _Substring:
    """One cut of the 64 bits: hashes sorted by its value (counting-sort buckets), probed within ``radius``."""

    def __init__(self, values: np.ndarray, shift: int, bits: int, radius: int) -> None:
        self.shift, self.bits, self.radius = shift, bits, radius
        self.mask = (1 << bits) - 1
        keys = _substring_keys(values, shift, bits)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.sorted_values = values[self.order]
        self.bucket_start = np.zeros((1 << bits) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=1 << bits), out=self.bucket_start[1:])

    def distance(self, xor: np.ndarray) -> np.ndarray:
        return np.bitwise_count((xor >> np.uint64(self.shift)) & np.uint64(self.mask))

    def probers_with_bit_clear(self, bit: int) -> np.ndarray:
        """Sorted positions whose key has ``bit`` clear: the smaller key of any pair differing first there."""
        return np.flatnonzero((self.sorted_keys & (1 << bit)) == 0)


def _substring_keys(values: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)


@lru_cache(maxsize=4096)
def _flip_masks(bits: int, weight: int, top_bit: int | None = None) -> np.ndarray:
    """Masks of ``bits`` bits with exactly ``weight`` set (and highest set bit ``top_bit`` if given), as int64."""
    if weight == 0:
        masks = np.zeros(1, dtype=np.int64)
    elif weight > (bits if top_bit is None else top_bit + 1):
        masks = np.empty(0, dtype=np.int64)
    elif top_bit is not None:
        masks = _flip_masks(top_bit, weight - 1) | (1 << top_bit)
    else:
        masks = np.concatenate([_flip_masks(bits, weight, top) for top in range(weight - 1, bits)])
    masks.flags.writeable = False
    return masks


def _substring_layout(count: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``count`` near-equal contiguous substrings of the 64 bits."""
    base, extra = divmod(HASH_BITS, count)
    layout, shift = [], 0
    for index in range(count):
        bits = base + (1 if index < extra else 0)
        layout.append((shift, bits))
        shift += bits
    return layout


def _plan(values: np.ndarray, threshold: int, *, allow_brute_force: bool) -> list[tuple[int, int, int]] | None:
    """The cheapest (shift, bits, radius) per substring, or None when comparing everything is cheaper."""
    n = len(values)
    if allow_brute_force and n < _BRUTE_FORCE_BELOW:
        return None
    best_cost = _COST_PER_BRUTE_PAIR * n * (n - 1) / 2 if allow_brute_force else float("inf")
    best_plan = None
    sample = values[np.random.default_rng(0).permutation(n)[:_SAMPLE_SIZE]]
    # Substrings of about log2(n) bits hold about one hash per bucket, the usual optimum; try
    # those first so that their cost prunes the rest early, and skip cuts far from it.
    ideal_bits = max(8.0, np.log2(n))
    counts = [count for count in range(3, 9) if abs(HASH_BITS / count - ideal_bits) <= 5]
    counts.sort(key=lambda count: abs(HASH_BITS / count - ideal_bits))
    for count in counts:
        layout = _substring_layout(count)
        if max(bits for _, bits in layout) > _MAX_SUBSTRING_BITS:
            continue
        costs = [_radius_costs(values, sample, shift, bits, threshold, budget=best_cost) for shift, bits in layout]
        cost, radii = _cheapest_radii(costs, needed=threshold + 1)
        if cost < best_cost:
            best_cost, best_plan = cost, [(s, b, r) for (s, b), r in zip(layout, radii, strict=True)]
    return best_plan


def _radius_costs(
    values: np.ndarray, sample: np.ndarray, shift: int, bits: int, threshold: int, *, budget: float
) -> list[float]:
    """Estimated cost of probing one substring with radius -1 (not at all), 0, 1, ... while under ``budget``.

    Probes are counted exactly; candidates exactly for the own bucket and from
    a sample for the neighbouring ones, so clustered hashes (crowded buckets)
    price themselves out.
    """
    n = len(values)
    counts = np.bincount(_substring_keys(values, shift, bits), minlength=1 << bits)
    probes = float(n)
    candidates = float((counts * (counts - 1) // 2).sum())
    cost = _COST_PER_SUBSTRING * n + _COST_PER_PROBE * probes + _COST_PER_CANDIDATE * candidates
    costs = [0.0, cost]
    for weight in range(1, min(bits, threshold) + 1):
        # Only the smaller key of a pair probes. More masks per hash than there are hashes is never worth it.
        probes += n / 2 * comb(bits, weight)
        if _COST_PER_PROBE * probes >= budget or comb(bits, weight) > max(n, 4096):
            break
        masks = _flip_masks(bits, weight)
        probing = sample[: max(64, _SAMPLE_WORK // len(masks))]
        hits = counts[_substring_keys(probing, shift, bits)[:, None] ^ masks[None, :]].sum(dtype=np.float64)
        candidates += hits * (n / len(probing)) / 2  # the sum sees each pair from both ends
        cost = _COST_PER_SUBSTRING * n + _COST_PER_PROBE * probes + _COST_PER_CANDIDATE * candidates
        costs.append(cost)
    return costs


def _cheapest_radii(costs: list[list[float]], *, needed: int) -> tuple[float, list[int]]:
    """Radii r_c >= -1 with sum(r_c + 1) >= needed minimising the summed cost (a small knapsack)."""
    best: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}  # covered = min(sum(r + 1), needed)
    for substring_costs in costs:
        following: dict[int, tuple[float, list[int]]] = {}
        for covered, (cost, radii) in best.items():
            for index, extra in enumerate(substring_costs):  # index 0 is radius -1
                key = min(needed, covered + index)
                total = cost + extra
                if key not in following or total < following[key][0]:
                    following[key] = (total, [*radii, index - 1])
        best = following
    return best.get(needed, (float("inf"), []))


def _multi_index_pairs(
    values: np.ndarray, threshold: int, plan: list[tuple[int, int, int]], workers: int
) -> list[np.ndarray]:
    substrings = [_Substring(values, shift, bits, radius) for shift, bits, radius in plan if radius >= 0]
    jobs: list[tuple[int, int | None]] = []
    for position, substring in enumerate(substrings):
        jobs.append((position, None))
        jobs += [(position, top_bit) for top_bit in range(substring.bits) if substring.radius >= 1]

    def run(job: tuple[int, int | None]) -> np.ndarray:
        position, top_bit = job
        if top_bit is None:
            return _own_bucket_pairs(substrings, position, threshold)
        return _neighbour_bucket_pairs(substrings, position, top_bit, threshold)

    # Largest jobs first, so that two workers finish together.
    jobs.sort(key=lambda job: -1 if job[1] is None else -job[1])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def _own_bucket_pairs(substrings: list[_Substring], position: int, threshold: int) -> np.ndarray:
    """Pairs whose keys are equal in this substring: each hash against the rest of its bucket."""
    substring = substrings[position]
    n = len(substring.sorted_keys)
    pieces = []
    for start in range(0, n, _BLOCK_WORK):
        probers = np.arange(start, min(n, start + _BLOCK_WORK), dtype=np.int64)
        ends = substring.bucket_start[substring.sorted_keys[probers] + 1]
        pieces.append(
            _check_runs(substrings, position, probers, (probers + 1)[:, None], (ends - probers - 1)[:, None], threshold)
        )
    return np.concatenate(pieces)


def _neighbour_bucket_pairs(substrings: list[_Substring], position: int, top_bit: int, threshold: int) -> np.ndarray:
    """Pairs whose keys differ in 1..radius bits, the highest of them ``top_bit``, seen from the smaller key."""
    substring = substrings[position]
    flips = np.concatenate([_flip_masks(substring.bits, weight, top_bit) for weight in range(1, substring.radius + 1)])
    probers_all = substring.probers_with_bit_clear(top_bit)
    rows = max(1, _BLOCK_WORK // len(flips))
    pieces = []
    for start in range(0, len(probers_all), rows):
        probers = probers_all[start : start + rows]
        targets = substring.sorted_keys[probers][:, None] ^ flips[None, :]
        first = substring.bucket_start[targets]
        counts = substring.bucket_start[targets + 1]
        counts -= first
        pieces.append(_check_runs(substrings, position, probers, first, counts, threshold))
    return np.concatenate(pieces) if pieces else _EMPTY_PAIRS


def _check_runs(
    substrings: list[_Substring],
    position: int,
    probers: np.ndarray,
    first: np.ndarray,
    counts: np.ndarray,
    threshold: int,
) -> np.ndarray:
    """Check prober p against sorted positions first[p, k] .. first[p, k] + counts[p, k] - 1, for every k."""
    pieces = []
    per_prober = counts.sum(axis=1)
    for rows in _row_slices(per_prober, _BLOCK_WORK * 2):
        pieces.append(
            _check_candidates(
                substrings, position, probers[rows], first[rows], counts[rows], per_prober[rows], threshold
            )
        )
    return np.concatenate(pieces) if pieces else _EMPTY_PAIRS


def _row_slices(work_per_row: np.ndarray, limit: int):
    """Consecutive row slices whose summed work stays near ``limit``; a single heavy row stands alone."""
    total = np.cumsum(work_per_row)
    start = 0
    while start < len(work_per_row):
        done = total[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(total, done + limit, side="right")))
        yield slice(start, stop)
        start = stop


def _check_candidates(
    substrings: list[_Substring],
    position: int,
    probers: np.ndarray,
    first: np.ndarray,
    counts: np.ndarray,
    per_prober: np.ndarray,
    threshold: int,
) -> np.ndarray:
    substring = substrings[position]
    total = int(per_prober.sum())
    if total == 0:
        return _EMPTY_PAIRS
    flat_counts = counts.ravel()
    run_end = np.cumsum(flat_counts)
    # Partner positions: first, first + 1, ... of each run, laid end to end.
    partner = np.repeat(first.ravel() - run_end + flat_counts, flat_counts)
    partner += np.arange(total, dtype=np.int64)
    xor = np.repeat(substring.sorted_values[probers], per_prober)
    xor ^= substring.sorted_values[partner]
    close = np.flatnonzero(np.bitwise_count(xor) <= threshold)
    if not len(close):
        return _EMPTY_PAIRS
    partner, xor = partner[close], xor[close]
    prober = probers[np.searchsorted(np.cumsum(per_prober), close, side="right")]
    # A pair within reach of an earlier substring was reported there already.
    first_seen_here = np.ones(len(xor), dtype=bool)
    for earlier in substrings[:position]:
        first_seen_here &= earlier.distance(xor) > earlier.radius
    left = substring.order[prober[first_seen_here]]
    right = substring.order[partner[first_seen_here]]
    return np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1)


# --- brute force -------------------------------------------------------------------------------------------------


def _brute_force_pairs(values: np.ndarray, threshold: int, workers: int) -> list[np.ndarray]:
    """Every pair compared, in tiles of 64 rows against a run of columns at or right of the diagonal."""
    n = len(values)
    rows, columns = _BRUTE_TILE
    jobs = [(row, column) for row in range(0, n, rows) for column in range(row, n, columns)]
    scratch = threading.local()  # one set of tile buffers per worker thread, reused for every tile

    def run(job: tuple[int, int]) -> np.ndarray:
        row, column = job
        left = values[row : row + rows, None]
        right = values[None, column : column + columns]
        if not hasattr(scratch, "xor"):
            scratch.xor = np.empty(rows * columns, dtype=np.uint64)
            scratch.distance = np.empty(rows * columns, dtype=np.uint8)
            scratch.close = np.empty(rows * columns, dtype=bool)
        shape = (left.shape[0], right.shape[1])
        size = shape[0] * shape[1]
        xor = np.bitwise_xor(left, right, out=scratch.xor[:size].reshape(shape))
        distance = np.bitwise_count(xor, out=scratch.distance[:size].reshape(shape))
        close = np.less_equal(distance, threshold, out=scratch.close[:size].reshape(shape))
        if not close.any():
            return _EMPTY_PAIRS
        flat = np.flatnonzero(close)
        i = flat // shape[1] + row
        j = flat % shape[1] + column
        keep = j > i
        return np.stack([i[keep], j[keep]], axis=1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def _sorted_pairs(pieces: list[np.ndarray], n: int) -> np.ndarray:
    """The pieces' pairs as one (k, 2) array sorted by (i, j); the pieces are released on the way."""
    total = sum(len(piece) for piece in pieces)
    keys = np.empty(total, dtype=np.int64)
    offset = 0
    for piece in pieces:  # (i, j) as the single sortable number i * n + j
        part = keys[offset : offset + len(piece)]
        np.multiply(piece[:, 0], n, out=part)
        part += piece[:, 1]
        offset += len(piece)
    pieces.clear()
    keys.sort()
    pairs = np.empty((total, 2), dtype=np.int64)
    np.divmod(keys, n, out=(pairs[:, 0], pairs[:, 1]))
    return pairs


# --- verified near duplicates ------------------------------------------------------------------------------------
#
# Why not pHash alone: on photos that share a corner logo or a caption bar, or that show nearly uniform
# skin, the overlay or the lighting decides most of the 64 bits, so distinct photos land within a few
# bits of each other, and connected components chain them into large groups (bench/RESULTS.md,
# "Near-duplicate groups on realistic photos"). The figures below were chosen there.

FINGERPRINT_SIDE = 64  # curation.imaging.FINGERPRINT_SIDE
# The embedding looks at the fingerprint without its outer 6 pixels (where logos and caption bars sit),
# band-passed (minus a Gaussian blur of sigma 3), scaled by its median absolute value and clipped at
# 2.5 so that no overlay dominates, then pooled into 13 × 13 cells.
_EMBEDDING_MARGIN = 6
_BAND_SIGMA = 3.0
_CLIP = 2.5
_EMBEDDING_BLUR = 1.0
_EMBEDDING_CELLS = 13
# Candidate pairs: cosine similarity of embeddings at least this (true copies: 99 %; distinct: 0.1 %).
CANDIDATE_MIN_SIMILARITY = 0.45
# Verification: the fingerprints are aligned (scale per axis, then translation by phase correlation)
# and compared in 4 × 4 blocks; the score is the median of the blocks' correlations, so a logo or
# caption in a few blocks neither makes nor breaks a match.
VERIFIED_MIN_SIMILARITY = 0.45
_SCALES = (0.92, 0.96, 1.0, 1 / 0.96, 1 / 0.92)  # a recrop of up to ~10 % of a side, either way
_MAX_SHIFT = 10
_ALIGNMENTS_SCORED = 2  # of the 25 scale combinations, those with the highest correlation peaks
_BLOCKS = 4
_MIN_VALID_BLOCKS = 0.4


def _band_pass(fingerprints: np.ndarray) -> np.ndarray:
    """(k, 64, 64) uint8 → float32, each image band-passed, robustly scaled and clipped."""
    from scipy import ndimage

    images = fingerprints.astype(np.float32)
    blurred = ndimage.gaussian_filter(images, sigma=(0, _BAND_SIGMA, _BAND_SIGMA), mode="nearest")
    band = images - blurred
    scale = np.median(np.abs(band), axis=(1, 2), keepdims=True) + 0.5
    return np.clip(band / scale, -_CLIP, _CLIP)


def as_fingerprints(fingerprints) -> np.ndarray:
    """A (k, 64, 64) uint8 array from a sequence of fingerprint bytes (or an array of them)."""
    if isinstance(fingerprints, np.ndarray) and fingerprints.dtype == np.uint8:
        return fingerprints.reshape(-1, FINGERPRINT_SIDE, FINGERPRINT_SIDE)
    items = [np.frombuffer(bytes(item), dtype=np.uint8) for item in fingerprints]
    if not items:
        return np.empty((0, FINGERPRINT_SIDE, FINGERPRINT_SIDE), dtype=np.uint8)
    return np.stack(items).reshape(-1, FINGERPRINT_SIDE, FINGERPRINT_SIDE)


def fingerprint_embeddings(fingerprints: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """(k, 169) float32 unit vectors; their dot products find candidate pairs. Overlays and borders count little."""
    from scipy import ndimage

    fingerprints = as_fingerprints(fingerprints)
    margin, cells = _EMBEDDING_MARGIN, _EMBEDDING_CELLS
    pieces = []
    for start in range(0, len(fingerprints), block):
        core = fingerprints[start : start + block, margin:-margin, margin:-margin]
        band = ndimage.gaussian_filter(_band_pass(core), sigma=(0, _EMBEDDING_BLUR, _EMBEDDING_BLUR))
        side = band.shape[1] // cells
        pooled = band[:, : side * cells, : side * cells].reshape(-1, cells, side, cells, side).mean(axis=(2, 4))
        pooled = pooled.reshape(len(core), -1)
        pooled -= pooled.mean(axis=1, keepdims=True)
        pooled /= pooled.std(axis=1, keepdims=True) + 1e-3
        pieces.append(pooled.astype(np.float32))
    if not pieces:
        return np.empty((0, cells * cells), dtype=np.float32)
    return np.concatenate(pieces)


def _unit_rows(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    centred = vectors - centre
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-6)


def candidate_pairs(
    embeddings: np.ndarray, *, new: np.ndarray | None = None, min_similarity: float = CANDIDATE_MIN_SIMILARITY
) -> np.ndarray:
    """Index pairs (i < j) whose embeddings' cosine similarity is at least `min_similarity`.

    The embeddings are centred on their mean first (what every photo of a collection shares, such as
    its average lighting, says nothing). With `new` (indices), only pairs with at least one new index
    are returned: what an import adds to pairs checked before. Blocked matrix products, so memory
    stays bounded.
    """
    n = len(embeddings)
    if n < 2:
        return _EMPTY_PAIRS.copy()
    unit = _unit_rows(embeddings.astype(np.float32), embeddings.mean(axis=0, dtype=np.float64).astype(np.float32))
    rows = np.arange(n) if new is None else np.unique(np.asarray(new, dtype=np.int64))
    is_new = np.zeros(n, dtype=bool)
    is_new[rows] = True
    pieces = []
    block = 2048
    for start in range(0, len(rows), block):
        left = rows[start : start + block]
        similarity = unit[left] @ unit.T
        i, j = np.nonzero(similarity >= min_similarity)
        i = left[i]
        # Each unordered pair once: from its smaller index when both are new, else from the new one.
        keep = (j != i) & ((i < j) | ~is_new[j])
        low, high = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
        pieces.append(np.stack([low, high], axis=1))
    return _sorted_pairs(pieces, n)


def _resampling(scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling along one axis about the centre: the lower source index and weight of each
    output position, and which output positions fall inside the picture."""
    side = FINGERPRINT_SIDE
    centre = (side - 1) / 2
    positions = (np.arange(side) - centre) * scale + centre
    valid = (positions >= 0) & (positions <= side - 1)
    clipped = np.clip(positions, 0, side - 1)
    below = np.minimum(np.floor(clipped).astype(np.int64), side - 2)
    return below, (clipped - below).astype(np.float32), valid


@lru_cache(maxsize=1)
def _resamplings() -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """The per-axis resamplings of _SCALES, and the validity mask of every (scale y, scale x), (K, 64, 64)."""
    axes = [_resampling(scale) for scale in _SCALES]
    masks = np.stack([row[2][:, None] & column[2][None, :] for row in axes for column in axes])
    return axes, masks


def _rescaled(images: np.ndarray) -> np.ndarray:
    """(M, 64, 64) → (M, K, 64, 64): each image rescaled by every (scale y, scale x), zero outside."""
    axes, masks = _resamplings()
    by_rows = [
        images[:, below] * (1 - weight)[:, None] + images[:, below + 1] * weight[:, None] for below, weight, _ in axes
    ]
    out = [
        rows[:, :, below] * (1 - weight) + rows[:, :, below + 1] * weight
        for rows in by_rows
        for below, weight, _ in axes
    ]
    return np.stack(out, axis=1) * masks[None]


def _block_median_correlation(a: np.ndarray, candidates: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per candidate (M, 64, 64) against `a` (M, 64, 64): the median over blocks of their correlation on
    valid pixels; -1 where too few blocks can be compared."""
    blocks, side = _BLOCKS, FINGERPRINT_SIDE // _BLOCKS
    m = len(candidates)

    def split(array):
        return array.reshape(m, blocks, side, blocks, side).transpose(0, 1, 3, 2, 4).reshape(m, blocks * blocks, -1)

    x, y = split(a), split(candidates)
    mask = split(valid).astype(np.float32)
    count = mask.sum(axis=2)
    safe = np.maximum(count, 1)
    xc = (x - ((x * mask).sum(axis=2) / safe)[..., None]) * mask
    yc = (y - ((y * mask).sum(axis=2) / safe)[..., None]) * mask
    denominator = np.sqrt((xc * xc).sum(axis=2) * (yc * yc).sum(axis=2))
    usable = (count >= 0.4 * side * side) & (denominator > 1e-3)
    correlation = np.where(usable, (xc * yc).sum(axis=2) / np.maximum(denominator, 1e-6), np.inf)
    ordered = np.sort(correlation, axis=1)  # unusable blocks (inf) last
    used = usable.sum(axis=1)
    low = np.take_along_axis(ordered, np.maximum(used - 1, 0)[:, None] // 2, axis=1)[:, 0]
    high = np.take_along_axis(ordered, (used // 2)[:, None], axis=1)[:, 0]
    median = np.where(used % 2 == 1, low, (low + high) / 2)
    return np.where(used >= _MIN_VALID_BLOCKS * blocks * blocks, median, -1.0)


def fingerprint_similarities(band_a: np.ndarray, band_b: np.ndarray) -> np.ndarray:
    """How surely each pair of band-passed fingerprints (M, 64, 64) shows one photo: -1 … 1.

    A score of VERIFIED_MIN_SIMILARITY or more is a near copy. Each `band_b` is rescaled along each
    axis by each of _SCALES about the centre, each rescaled copy is aligned to its `band_a` by phase
    correlation (a shift of up to _MAX_SHIFT pixels), and the median block correlation of the
    _ALIGNMENTS_SCORED alignments with the highest correlation peaks is the score (the best of them).
    """
    from scipy import fft

    _, masks = _resamplings()
    pairs, side = len(band_a), FINGERPRINT_SIDE
    scaled = _rescaled(band_b)  # (M, K, 64, 64)
    spectrum = fft.rfft2(band_a)[:, None] * np.conj(fft.rfft2(scaled))
    spectrum /= np.abs(spectrum) + 1e-9
    surface = fft.irfft2(spectrum, s=(side, side)).reshape(pairs, len(masks), -1)
    peak_at = surface.argmax(axis=2)
    height = np.take_along_axis(surface, peak_at[..., None], axis=2)[..., 0]
    best = np.argsort(-height, axis=1)[:, :_ALIGNMENTS_SCORED]  # (M, A) scale combos worth scoring
    scales = best.shape[1]
    chosen = (np.arange(pairs)[:, None] * len(masks) + best).ravel()
    shift_y, shift_x = np.divmod(np.take_along_axis(peak_at, best, axis=1).ravel(), side)
    shift_y = np.where(shift_y > side // 2, shift_y - side, shift_y)
    shift_x = np.where(shift_x > side // 2, shift_x - side, shift_x)
    # Shift each rescaled copy by its peak; what would come from outside the picture is not valid.
    source_y = np.arange(side)[None, :] - shift_y[:, None]  # (M*A, 64)
    source_x = np.arange(side)[None, :] - shift_x[:, None]
    inside = ((source_y >= 0) & (source_y < side))[:, :, None] & ((source_x >= 0) & (source_x < side))[:, None, :]
    source_y, source_x = np.clip(source_y, 0, side - 1), np.clip(source_x, 0, side - 1)
    item = chosen[:, None, None]
    flat_scaled = scaled.reshape(-1, side, side)
    aligned = flat_scaled[item, source_y[:, :, None], source_x[:, None, :]]
    combo = best.ravel()[:, None, None]
    valid = inside & masks[combo, source_y[:, :, None], source_x[:, None, :]]
    valid &= ((np.abs(shift_y) <= _MAX_SHIFT) & (np.abs(shift_x) <= _MAX_SHIFT))[:, None, None]
    aligned = np.where(valid, aligned, 0)
    repeated_a = np.repeat(band_a, scales, axis=0)
    scores = _block_median_correlation(repeated_a, aligned, valid).reshape(pairs, scales)
    return scores.max(axis=1)


def pair_similarities(fingerprints: np.ndarray, pairs: np.ndarray, *, batch: int = 32) -> np.ndarray:
    """The similarity of each index pair's fingerprints (fingerprint_similarities), in batches."""
    fingerprints = as_fingerprints(fingerprints)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    scores = np.empty(len(pairs))
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        first = _band_pass(fingerprints[chunk[:, 0]])
        second = _band_pass(fingerprints[chunk[:, 1]])
        # Scaled one way only, a copy cropped from the other would be missed: so both ways.
        # The scales go both ways (0.92 and 1 / 0.92), so one direction covers a crop of either.
        scores[start : start + len(chunk)] = fingerprint_similarities(first, second)
    return scores


def complete_linkage_groups(
    n: int, pairs: np.ndarray, scores: np.ndarray, *, excluded_pairs: set[tuple[int, int]] | None = None
) -> list[np.ndarray]:
    """Groups in which every two members are a given pair (no chaining through weak links).

    Pairs are merged best score first; two groups join only when every pair across them is a given
    pair and none is excluded (a curator's "not the same"). Each group's indices ascend; groups are
    ordered by their smallest index.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    excluded = {(min(i, j), max(i, j)) for i, j in (excluded_pairs or ())}
    linked: set[tuple[int, int]] = set()
    for i, j in pairs.tolist():
        if (i, j) not in excluded:
            linked.add((min(i, j), max(i, j)))
    group_of: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for position in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable").tolist():
        i, j = pairs[position].tolist()
        if (min(i, j), max(i, j)) not in linked:
            continue
        left, right = group_of.get(i), group_of.get(j)
        if left is not None and left == right:
            continue
        left_members = members[left] if left is not None else [i]
        right_members = members[right] if right is not None else [j]
        if not all((min(a, b), max(a, b)) in linked for a in left_members for b in right_members):
            continue
        merged = left_members + right_members
        key = left if left is not None else (right if right is not None else i)
        for other in (left, right):
            if other is not None and other != key:
                members.pop(other)
        members[key] = merged
        group_of.update(dict.fromkeys(merged, key))
    groups = [np.array(sorted(group), dtype=np.int64) for group in members.values() if len(group) >= 2]
    groups.sort(key=lambda group: int(group[0]))
    return groups


@dataclass(frozen=True)
class VerifiedGroups:
    groups: list[np.ndarray]
    pairs: np.ndarray  # verified pairs, (k, 2)
    scores: np.ndarray  # their similarity
    candidates: int
    verified: int


def verified_duplicate_groups(
    fingerprints: np.ndarray, *, excluded_pairs: set[tuple[int, int]] | None = None
) -> VerifiedGroups:
    """Near-duplicate groups of whole fingerprint sets (what bench/dedup_realistic.py measures).

    The app runs the same steps incrementally (curation.services.duplicates): candidates from
    embeddings, each verified, then complete linkage over the verified pairs.
    """
    fingerprints = as_fingerprints(fingerprints)
    candidates = candidate_pairs(fingerprint_embeddings(fingerprints))
    scores = pair_similarities(fingerprints, candidates)
    keep = scores >= VERIFIED_MIN_SIMILARITY
    pairs, scores = candidates[keep], scores[keep]
    groups = complete_linkage_groups(len(fingerprints), pairs, scores, excluded_pairs=excluded_pairs)
    return VerifiedGroups(groups=groups, pairs=pairs, scores=scores, candidates=len(candidates), verified=len(pairs))
