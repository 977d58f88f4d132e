"""The shared helpers: seed derivation and its registry of random streams, fresh seeds, atomic writes."""

from __future__ import annotations

import itertools

from frs_hf.utils import SHARED, Stream, derive_seed, fresh_seed, write_atomic


def test_every_stream_of_an_example_is_its_own():
    """An example's deletions, weight-draw choices and area search, and the shared weight draws, never share a
    seed: the area (and so the rates) must not depend on the draws that are counted (docs/theory.md)."""
    seed = 1234
    assert len({s.value for s in Stream}) == len(Stream)
    seeds = []
    for index in range(50):
        seeds.append(derive_seed(seed, index))  # deletions
        seeds += [derive_seed(seed, index, stream) for stream in (Stream.WEIGHT_DRAW, Stream.FUZZING)]
    seeds += [derive_seed(seed, SHARED, Stream.WEIGHT_NOISE, draw) for draw in range(50)]
    assert len(set(seeds)) == len(seeds)


def test_derive_seed_depends_on_every_key_and_its_order():
    keys = [derive_seed(*k) for k in itertools.permutations((0, 1, 2))]
    assert len(set(keys)) == len(keys)
    assert derive_seed(7, 3) == derive_seed(7, 3) and 0 <= derive_seed(-1, 2**70) < 2**63


def test_fresh_seeds_differ():
    assert len({fresh_seed() for _ in range(20)}) == 20


def test_write_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "out.json"
    write_atomic(path, "first")
    write_atomic(path, "second")
    assert path.read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
