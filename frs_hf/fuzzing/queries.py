"""The search's model queries: mutated token sequences built from word units (no re-tokenizing), and a
batched, cached oracle that scores them by KL divergence within a hard forward budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ..randomize import TextUnits

# Maps a batch of token sequences (special tokens included) to class probabilities [batch, classes].

# Maps a batch of token sequences (special tokens included) to class probabilities [batch, classes].
Query = Callable[[list[np.ndarray]], np.ndarray]


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``KL(p || q)`` along the last axis, in nats."""
    p, q = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    return (p * (np.log(p) - np.log(q))).sum(axis=-1)


class Oracle:
    """Batched, cached model queries with a hard forward budget.

    A mutation the search asks for again (MCTS revisits spans; shrinking retries sets) is answered from the
    cache: it costs no forward and no budget. ``num_queries`` counts the answers, ``num_forwards`` the forwards.
    """

    def __init__(self, query: Query, budget: int, original: np.ndarray) -> None:
        self.query, self.budget = query, budget
        self.cache: dict[bytes, float] = {}
        self.base = query([original])[0]
        self.num_forwards = self.num_queries = 1

    @property
    def remaining(self) -> int:
        return self.budget - self.num_forwards

    @contextmanager
    def holding_back(self, forwards: int) -> Iterator[None]:
        """Keep ``forwards`` of the budget out of reach inside the block, for what comes after it."""
        self.budget -= forwards
        try:
            yield
        finally:
            self.budget += forwards

    def rewards(self, sequences: list[np.ndarray]) -> list[float | None]:
        """KL of each sequence's output from the original's; None where the budget ran out."""
        keys = [s.tobytes() for s in sequences]
        new: dict[bytes, np.ndarray] = {}
        for key, seq in zip(keys, sequences, strict=True):
            if key not in self.cache and key not in new and len(new) < self.remaining:
                new[key] = seq
        if new:
            probs = self.query(list(new.values()))
            self.cache.update(zip(new, kl_divergence(probs, self.base[None, :]).tolist(), strict=True))
            self.num_forwards += len(new)
        answers = [self.cache.get(k) for k in keys]
        self.num_queries += sum(a is not None for a in answers)
        return answers


def original_sequence(units: TextUnits, max_length: int, deleted: Sequence[int] = ()) -> np.ndarray:
    """The token sequence the search starts from: the text as the model reads it, cut to ``max_length``
    (without the units ``deleted``: what the search queries when it deletes them)."""
    return Mutator(units, max_length, None).delete_units(deleted)


class Mutator:
    """Builds mutated token sequences from word units, without re-tokenizing."""

    def __init__(self, units: TextUnits, max_length: int, mask_token_id: int | None) -> None:
        bounds = np.searchsorted(units.token_unit, np.arange(1, units.num_units))
        self.pieces = np.split(units.token_ids, bounds)
        self.prefix = np.asarray(units.prefix_ids, np.int64)
        self.suffix = np.asarray(units.suffix_ids, np.int64)
        self.budget = max(0, max_length - len(self.prefix) - len(self.suffix))
        self.mask = None if mask_token_id is None else np.array([mask_token_id], np.int64)

    def build(self, order: Sequence[int], masked: frozenset[int] = frozenset()) -> np.ndarray:
        return self._assemble([self.mask if u in masked else self.pieces[u] for u in order])

    def insert(self, block: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """This text with the token pieces ``block`` inserted as one run at a random word boundary, chosen
        among those that keep the whole block inside the model's window (the start, if none does)."""
        offsets = np.cumsum([0, *(len(p) for p in self.pieces)])
        fits = np.flatnonzero(offsets + sum(len(p) for p in block) <= self.budget)
        gap = int(rng.choice(fits)) if len(fits) else 0
        return self._assemble([*self.pieces[:gap], *block, *self.pieces[gap:]])

    def _assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        body = np.concatenate(parts)[: self.budget] if len(parts) else np.zeros(0, np.int64)
        return np.concatenate([self.prefix, body, self.suffix])

    def original(self) -> np.ndarray:
        return self.build(range(len(self.pieces)))

    def delete(self, start: int, end: int) -> np.ndarray:
        return self.build([u for u in range(len(self.pieces)) if not start <= u < end])

    def delete_units(self, units: Sequence[int]) -> np.ndarray:
        gone = set(units)
        return self.build([u for u in range(len(self.pieces)) if u not in gone])

    def random_mutation(self, start: int, end: int, rng: np.random.Generator) -> np.ndarray:
        """One random Damerau-Levenshtein mutation inside ``[start, end)``."""
        units = list(range(len(self.pieces)))
        span = np.arange(start, end)
        ops = ["delete", "substitute"] if self.mask is not None else ["delete"]
        if end - start >= 2:
            ops.append("transpose")
        op = ops[rng.integers(len(ops))]
        if op == "transpose":
            i = int(rng.integers(start, end - 1))
            units[i], units[i + 1] = units[i + 1], units[i]
            return self.build(units)
        hit = span[rng.random(len(span)) < 0.5]
        if len(hit) == 0:
            hit = span[[rng.integers(len(span))]]
        if op == "substitute":
            return self.build(units, frozenset(hit.tolist()))
        return self.build([u for u in units if u not in set(hit.tolist())])


def memoize(query: Query) -> Query:
    """``query`` with its rows cached by token sequence: calibration reruns the search on the same
    texts at several floors, and most of the mutations it tries repeat."""
    cache: dict[bytes, np.ndarray] = {}

    def cached(sequences: list[np.ndarray]) -> np.ndarray:
        keys = [s.tobytes() for s in sequences]
        missing = list({k: s for k, s in zip(keys, sequences, strict=True) if k not in cache}.items())
        if missing:
            cache.update(zip((k for k, _ in missing), query([s for _, s in missing]), strict=True))
        return np.stack([cache[k] for k in keys])

    return cached
