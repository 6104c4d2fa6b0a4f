"""Near-duplicate search is exact (checked against an all-pairs reference) and groups follow the pairs."""

import numpy as np
import pytest

from curation import dedup
from curation.dedup import (
    as_uint64,
    connected_components,
    duplicate_groups,
    hamming_distance,
    near_duplicate_pairs,
)


def reference_pairs(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """All pairs by a full distance matrix: obviously right, only usable for a few thousand hashes."""
    values = as_uint64(hashes)
    distances = np.bitwise_count(values[:, None] ^ values[None, :])
    i, j = np.nonzero(np.triu(distances <= threshold, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def random_hashes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, n, dtype=np.uint64)


def clustered_hashes(n: int, seed: int, *, centres: int = 30, max_flips: int = 14) -> np.ndarray:
    """Hashes near a few centres, like many photos of one kind of lesion: crowded buckets, many true pairs."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64, centres, dtype=np.uint64)[rng.integers(0, centres, n)]
    flips = rng.integers(0, max_flips + 1, n)
    for step in range(max_flips):
        bit = np.left_shift(np.uint64(1), rng.integers(0, 64, n).astype(np.uint64))
        values ^= np.where(flips > step, bit, np.uint64(0))
    return values


def with_planted_copies(values: np.ndarray, seed: int, max_flips: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    copies = values[rng.integers(0, len(values), len(values) // 10)].copy()
    for _ in range(max_flips):
        flip = rng.random(len(copies)) < 0.6
        copies ^= np.where(flip, np.left_shift(np.uint64(1), rng.integers(0, 64, len(copies)).astype(np.uint64)), 0)
    return np.concatenate([values, copies])


@pytest.mark.parametrize("threshold", [0, 4, 8, 12])
@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("method", ["multi_index", "brute_force", "auto"])
def test_pairs_match_the_all_pairs_reference(threshold, kind, method):
    if kind == "random":
        values = with_planted_copies(random_hashes(2500, seed=threshold), seed=1, max_flips=threshold)
    else:
        values = clustered_hashes(2500, seed=threshold)
    expected = reference_pairs(values, threshold)
    found = near_duplicate_pairs(values, threshold, method=method)
    assert found.dtype == np.int64
    assert found.shape == expected.shape
    assert np.array_equal(found, expected)
    assert len(expected) > 0 or threshold == 0


def test_large_clustered_input_agrees_between_methods():
    # Above the size where "auto" starts planning, with buckets crowded enough to matter.
    values = np.concatenate([clustered_hashes(6000, seed=5, centres=8, max_flips=10), random_hashes(6000, seed=6)])
    auto = near_duplicate_pairs(values, 8)
    assert np.array_equal(auto, near_duplicate_pairs(values, 8, method="brute_force"))
    assert np.array_equal(auto, near_duplicate_pairs(values, 8, method="multi_index"))
    assert len(auto) > 10_000


@pytest.mark.parametrize("method", ["multi_index", "brute_force"])
def test_tiny_work_blocks_still_find_every_pair(monkeypatch, method):
    # Blocks of a few dozen elements force every slicing path, including a bucket larger than a block.
    monkeypatch.setattr(dedup, "_BLOCK_WORK", 48)
    monkeypatch.setattr(dedup, "_BRUTE_TILE", (8, 40))
    values = np.concatenate([np.full(300, 12345, dtype=np.uint64), clustered_hashes(700, seed=3)])
    found = near_duplicate_pairs(values, 6, method=method)
    assert len(found) > 300 * 299 // 2
    assert np.array_equal(found, reference_pairs(values, 6))


def test_pairs_are_sorted_with_i_below_j():
    found = near_duplicate_pairs(clustered_hashes(1500, seed=9), 10)
    assert (found[:, 0] < found[:, 1]).all()
    keys = found[:, 0] * 1500 + found[:, 1]
    assert (np.diff(keys) > 0).all()


def test_signed_and_unsigned_inputs_give_the_same_pairs():
    unsigned = with_planted_copies(random_hashes(1200, seed=4), seed=2, max_flips=6)
    signed = unsigned.view(np.int64)
    assert (signed < 0).any()
    expected = near_duplicate_pairs(unsigned, 6)
    assert len(expected) > 0
    assert np.array_equal(near_duplicate_pairs(signed, 6), expected)
    assert np.array_equal(near_duplicate_pairs([int(value) for value in signed], 6), expected)
    assert np.array_equal(near_duplicate_pairs([int(value) for value in unsigned], 6), expected)


def test_python_ints_above_two_to_the_63_are_not_rounded_through_floats():
    hashes = [2**64 - 1, 2**64 - 2, -1]
    assert as_uint64(hashes).tolist() == [2**64 - 1, 2**64 - 2, 2**64 - 1]
    assert near_duplicate_pairs(hashes, 0).tolist() == [[0, 2]]
    assert near_duplicate_pairs(hashes, 1).tolist() == [[0, 1], [0, 2], [1, 2]]


@pytest.mark.parametrize("hashes", [np.empty(0, dtype=np.int64), np.array([42], dtype=np.int64), []])
def test_empty_and_single_inputs_have_no_pairs(hashes):
    found = near_duplicate_pairs(hashes, 8)
    assert found.shape == (0, 2)
    assert found.dtype == np.int64
    assert duplicate_groups(hashes, 8) == []


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(random_hashes(3, seed=0), -1)
    with pytest.raises(ValueError, match="method"):
        near_duplicate_pairs(random_hashes(3, seed=0), 4, method="fast")
    with pytest.raises(ValueError, match="one-dimensional"):
        near_duplicate_pairs(random_hashes(4, seed=0).reshape(2, 2), 4)
    with pytest.raises(TypeError):
        near_duplicate_pairs(np.array([1.5, 2.5]), 4)


def test_hamming_distance_accepts_signed_and_unsigned_values():
    assert hamming_distance(0, 0) == 0
    assert hamming_distance(0b1011, 0b0001) == 2
    assert hamming_distance(-1, 0) == 64
    assert hamming_distance(-1, 2**64 - 1) == 0
    assert hamming_distance(-(2**63), 0) == 1


def test_connected_components_join_a_chain():
    labels = connected_components(5, np.array([[0, 1], [1, 2]]))
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3
    assert connected_components(3, np.empty((0, 2), dtype=np.int64)).tolist() == [0, 1, 2]
    assert connected_components(0, np.empty((0, 2))).shape == (0,)


def chain_hashes() -> np.ndarray:
    """a-b at distance 3, b-c at 3, a-c at 6, d far away: a threshold of 4 chains a-b-c."""
    a = 0
    b = 0b111
    c = 0b111111
    d = 2**64 - 1
    return np.array([a, b, c, d], dtype=np.uint64)


def test_duplicate_groups_follow_chains_of_pairs():
    groups = duplicate_groups(chain_hashes(), 4)
    assert [group.tolist() for group in groups] == [[0, 1, 2]]


def test_excluded_pair_splits_a_group():
    groups = duplicate_groups(chain_hashes(), 4, excluded_pairs={(1, 2)})
    assert [group.tolist() for group in groups] == [[0, 1]]
    reversed_order = duplicate_groups(chain_hashes(), 4, excluded_pairs={(2, 1)})
    assert [group.tolist() for group in reversed_order] == [[0, 1]]


def test_dhash_confirmation_drops_a_pair():
    phash = np.array([0, 0b1, 2**64 - 1, 2**64 - 4], dtype=np.uint64)  # two pHash pairs: (0, 1) and (2, 3)
    dhash = np.array([0, 0b1, 0, 2**64 - 1], dtype=np.uint64)  # dHash agrees for (0, 1) only
    assert [g.tolist() for g in duplicate_groups(phash, 4)] == [[0, 1], [2, 3]]
    confirmed = duplicate_groups(phash, 4, confirm=dhash, confirm_threshold=10)
    assert [group.tolist() for group in confirmed] == [[0, 1]]
    with pytest.raises(ValueError, match="confirm_threshold"):
        duplicate_groups(phash, 4, confirm=dhash)


def test_groups_are_ordered_by_their_smallest_index():
    hashes = np.array([2**50, 7, 2**50 + 1, 6], dtype=np.uint64)
    assert [group.tolist() for group in duplicate_groups(hashes, 1)] == [[0, 2], [1, 3]]
