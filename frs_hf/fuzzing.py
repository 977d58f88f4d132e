"""Fuzzing: find the spans of a text whose mutation moves the model's output most.

A backdoor trigger is, by construction, a small part of the input that decides the output. The
search mutates spans of word units (deletion, substitution by the mask token, adjacent
transposition: the Damerau-Levenshtein operations) and scores each span by the KL divergence
``KL(p_mutated || p_original)`` of the model's class distribution. Monte Carlo tree search runs
coarse to fine: the root is the whole text, children are halves (plus a straddling middle half),
down to single words, and UCT spends the forward budget where the divergence is.

The area found here only *sets the deletion rates*; the certificate never trusts it (see
docs/theory.md: ``area_radius`` speaks about units inside the area, ``radius`` about edits anywhere).
The search draws from its own random stream, never from the smoothing draws.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .randomize import Span, TextUnits
from .utils import derive_seed

# Maps a batch of token sequences (special tokens included) to class probabilities [batch, classes].
Query = Callable[[list[np.ndarray]], np.ndarray]
_FUZZING_STREAM = 1  # derive_seed(seed, index, 1): independent of the smoothing draws (seed, index)
# Forwards that shrinking a deletion set leaves for testing the words it keeps (a trigger is 1-3 words).
_TEST_RESERVE = 4


@dataclass(frozen=True)
class FuzzingResult:
    """Ranked spans ``(start, end, score)`` (word units, end exclusive; score in nats), the
    vulnerable area derived from them, and the model forwards spent (the original text included)."""

    spans: list[tuple[int, int, float]]
    area: list[Span]
    num_forwards: int


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``KL(p || q)`` along the last axis, in nats."""
    p, q = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    return (p * (np.log(p) - np.log(q))).sum(axis=-1)


def area_cap(num_units: int, max_fraction: float, max_words: int | None = None) -> int:
    """The most units an area may cover: ``max_fraction`` of the text, and at most ``max_words``.

    Why a cap in words too: a trigger is a few words whatever the text's length, while deleting a
    long stretch of a long review moves any model's output; without it a clean review gets half its
    words flagged (docs/fuzzing.md).
    """
    cap = max(1, math.floor(max_fraction * num_units))
    return cap if max_words is None else max(1, min(cap, max_words))


def area_mask(area: Sequence[Span], num_units: int) -> np.ndarray:
    """The units an area covers, as a boolean mask over the text's ``num_units`` units."""
    covered = np.zeros(num_units, dtype=bool)
    for a, b in area:
        covered[a:b] = True
    return covered


def select_area(
    spans: Sequence[tuple[int, int, float]],
    num_units: int,
    *,
    threshold: float,
    min_kl: float,
    max_fraction: float,
    max_words: int | None = None,
) -> list[Span]:
    """The union of the spans that stand out, finest first, capped at ``max_fraction`` of the units.

    A span stands out when its score is at least ``threshold`` times the text's best score and at
    least ``min_kl``. A standout span is dropped when a finer standout span inside it already
    explains its score (scores within the same ``threshold`` ratio). Spans are then added in
    order of score while the area stays within the cap (:func:`area_cap`).
    """
    if not spans:
        return []
    cut = max(threshold * max(s for _, _, s in spans), min_kl)
    chosen: list[tuple[int, int, float]] = []
    for a, b, score in sorted((s for s in spans if s[2] >= cut), key=lambda s: (s[1] - s[0], -s[2])):
        if any(a <= c0 and c1 <= b and sc >= threshold * score for c0, c1, sc in chosen):
            continue
        chosen.append((a, b, score))
    cap = area_cap(num_units, max_fraction, max_words)
    covered = np.zeros(num_units, dtype=bool)
    for a, b, _ in sorted(chosen, key=lambda s: -s[2]):
        trial = covered.copy()
        trial[a:b] = True
        if trial.sum() <= cap:
            covered = trial
    edges = np.flatnonzero(np.diff(np.concatenate([[0], covered.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def dilate(
    area: Sequence[Span], num_units: int, *, margin: int, max_fraction: float, max_words: int | None = None
) -> list[Span]:
    """Widen each span by up to ``margin`` units on each side, one unit at a time, while the area
    stays within ``max_fraction`` of the units.

    Why: a model often keys a multi-word trigger on one word (an AddSent sentence on its rarest
    word); the search then flags that word alone, and the margin brings the rest of the phrase into
    the high deletion rate. An empty area stays empty.
    """
    cap = area_cap(num_units, max_fraction, max_words)
    covered = area_mask(area, num_units)
    spans = [list(span) for span in area]
    for _ in range(margin):
        for span in spans:
            for side, step in ((0, -1), (1, 1)):
                unit = span[side] + (step if side == 0 else 0)
                if 0 <= unit < num_units and not covered[unit] and covered.sum() < cap:
                    covered[unit] = True
                    span[side] += step
    return _spans_of(np.flatnonzero(covered).tolist())


class _Oracle:
    """Batched, cached model queries with a hard forward budget."""

    def __init__(self, query: Query, budget: int, original: np.ndarray) -> None:
        self.query, self.budget = query, budget
        self.cache: dict[bytes, float] = {}
        self.base = query([original])[0]
        self.num_forwards = 1

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
        return [self.cache.get(k) for k in keys]


def original_sequence(units: TextUnits, max_length: int, deleted: Sequence[int] = ()) -> np.ndarray:
    """The token sequence the search starts from: the text as the model reads it, cut to ``max_length``
    (without the units ``deleted``: what the search queries when it deletes them)."""
    return _Mutator(units, max_length, None).delete_units(deleted)


class _Mutator:
    """Builds mutated token sequences from word units, without re-tokenizing."""

    def __init__(self, units: TextUnits, max_length: int, mask_token_id: int | None) -> None:
        bounds = np.searchsorted(units.token_unit, np.arange(1, units.num_units))
        self.pieces = np.split(units.token_ids, bounds)
        self.prefix = np.asarray(units.prefix_ids, np.int64)
        self.suffix = np.asarray(units.suffix_ids, np.int64)
        self.budget = max(0, max_length - len(self.prefix) - len(self.suffix))
        self.mask = None if mask_token_id is None else np.array([mask_token_id], np.int64)

    def build(self, order: Sequence[int], masked: frozenset[int] = frozenset()) -> np.ndarray:
        parts = [self.mask if u in masked else self.pieces[u] for u in order]
        body = np.concatenate(parts)[: self.budget] if parts else np.zeros(0, np.int64)
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


@dataclass(eq=False)
class _Node:
    start: int
    end: int
    visits: int = 0
    virtual: int = 0
    total: float = 0.0
    own_count: int = 0
    own_best: float = 0.0
    children: list[_Node] = field(default_factory=list)
    untried: list[Span] | None = None


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


def calibrate_min_kl(
    empty_share: Callable[[float], float],
    *,
    empty_fraction: float = 0.8,
    low: float = 0.05,
    high: float = 5.0,
    steps: int = 7,
) -> float:
    """The smallest floor (``min_kl``, nats) at which at least ``empty_fraction`` of a set of clean
    texts get no area, by bisection on a log scale in ``[low, high]``; ``empty_share(floor)`` runs
    the search at that floor and returns the share of texts left without an area.

    Why: how far deleting a word moves the output depends on the model -- a classifier trained on
    less data, or less confident, moves less for triggers and opinion words alike -- so a floor in
    nats tuned on one model can hide the triggers of another (docs/fuzzing.md). What transfers is the
    floor's purpose: on clean text, usually flag nothing. Returns ``high`` when even that leaves
    fewer than ``empty_fraction`` of the texts without an area, with a warning.
    """
    if not 0 < empty_fraction <= 1:
        raise ValueError(f"empty_fraction must be in (0, 1], got {empty_fraction}.")
    if not 0 < low < high:
        raise ValueError(f"Need 0 < low < high, got low={low}, high={high}.")
    lo, hi, reached = math.log(low), math.log(high), False
    for _ in range(steps):
        mid = (lo + hi) / 2
        if empty_share(math.exp(mid)) >= empty_fraction:
            hi, reached = mid, True
        else:
            lo = mid
    if not reached and (share := empty_share(high)) < empty_fraction:
        warnings.warn(
            f"Only {share:.0%} of the calibration texts get no area even at min_kl={high} nats (wanted "
            f"{empty_fraction:.0%}): are they clean? Using {high}.",
            stacklevel=2,
        )
    return float(math.exp(hi))


def _split(start: int, end: int, min_span: int) -> list[Span]:
    """Children of a span: its two halves and, from four units on, the middle half that straddles them."""
    length = end - start
    if length <= min_span:
        return []
    mid = start + length // 2
    spans = [(start, mid), (mid, end)]
    if length >= 4:
        spans.append((start + length // 4, end - length // 4))
    return spans


def mcts_search(
    mutator: _Mutator,
    oracle: _Oracle,
    num_units: int,
    rng: np.random.Generator,
    *,
    exploration: float = 1.0,
    batch: int = 8,
    min_span: int = 1,
    give_up: Sequence[tuple[int, float, int]] = (),
) -> list[tuple[int, int, float]]:
    """UCT over spans with virtual loss; returns every simulated span with its best reward.

    Each ``(forwards, reward, widest)`` of ``give_up`` stops the search once it has spent ``forwards``
    without any span of at most ``widest`` units reaching ``reward``: nothing localizes (e.g.
    scattered triggers, any one of which keeps the backdoor on: a region holding them all moves the
    output, none of its parts does), and the rest of the budget is better spent shrinking a deletion
    set (:func:`_refine`).
    """
    root = _Node(0, num_units)
    nodes = [root]
    best = 1e-9  # rewards are normalized by the largest seen so UCT's constant is scale-free

    def uct(parent: _Node, child: _Node) -> float:
        n = child.visits + child.virtual
        if n == 0:
            return math.inf
        return child.total / n / best + exploration * math.sqrt(math.log(parent.visits + parent.virtual + 1) / n)

    def select() -> list[_Node]:
        node, path = root, [root]
        while True:
            if node.untried is None:
                node.untried = _split(node.start, node.end, min_span)
                rng.shuffle(node.untried)
            if node.untried:
                child = _Node(*node.untried.pop())
                node.children.append(child)
                nodes.append(child)
                return path + [child]
            if not node.children:
                return path
            node = max(node.children, key=lambda c: uct(node, c))
            path.append(node)

    def reached(widest: int) -> float:
        return max((n.own_best for n in nodes if n.own_count and n.end - n.start <= widest), default=0.0)

    stalled = 0
    while oracle.remaining > 0 and stalled < 3:
        if any(oracle.num_forwards >= forwards and reached(widest) < reward for forwards, reward, widest in give_up):
            break
        paths = []
        for _ in range(batch):
            path = select()
            for n in path:
                n.virtual += 1
            paths.append(path)
        leaves = [p[-1] for p in paths]
        sequences = [
            mutator.delete(n.start, n.end) if n.own_count == 0 else mutator.random_mutation(n.start, n.end, rng)
            for n in leaves
        ]
        before = oracle.num_forwards
        rewards = oracle.rewards(sequences)
        for path, reward in zip(paths, rewards, strict=True):
            for n in path:
                n.virtual -= 1
            if reward is None:
                continue
            best = max(best, reward)
            for n in path:
                n.visits += 1
                n.total += reward
            path[-1].own_count += 1
            path[-1].own_best = max(path[-1].own_best, reward)
        stalled = stalled + 1 if oracle.num_forwards == before else 0
    return [(n.start, n.end, n.own_best) for n in nodes if n.own_count]


def restore_chunks(mutator: _Mutator, oracle: _Oracle, units: Sequence[int], target: float) -> list[int]:
    """Shrink a deletion set by restoring chunks: a subset whose deletion still moves the output by at
    least ``target`` nats, within the oracle's budget.

    Adaptive group testing, halving: a chunk whose restoration keeps the move above ``target`` is
    not needed and leaves the set; one whose restoration undoes the move holds a needed word and is
    split in two. Why restoring rather than deleting (delta debugging's first step): with several
    trigger words, any *one* left in the text keeps the backdoor on, so deleting a chunk that holds
    some of them shows nothing, while restoring a chunk that holds any of them undoes the move.
    Each needed word costs about ``2 log2(len(units))`` forwards; passes repeat until one removes
    nothing (a word needed early on can become unneeded once others are restored).

    A set whose deletion moves the output by less than ``target`` (deleting a whole text: an empty
    text is not a trigger-free one) climbs first: a restoration is kept while it does not lower the
    move, so restoring the opinion words around scattered triggers raises it until ``target`` holds.
    """
    kept, removed = list(units), True
    current = oracle.rewards([mutator.delete_units(kept)])[0]
    while removed and len(kept) >= 2 and oracle.remaining > 0:
        removed, stack = False, [list(c) for c in np.array_split(np.array(kept), 2)[::-1]]
        while stack and oracle.remaining > 0:
            chunk = set(stack.pop())
            trial = [u for u in kept if u not in chunk]
            reward = oracle.rewards([mutator.delete_units(trial)])[0] if trial else None
            if reward is not None and current is not None and reward >= min(target, current):
                kept, removed, current = trial, True, reward
            elif len(chunk) > 1:
                stack.extend(list(c) for c in np.array_split(np.array(sorted(chunk)), 2)[::-1])
    return sorted(kept)


def reduce_deletion_set(mutator: _Mutator, oracle: _Oracle, units: Sequence[int], target: float) -> list[int]:
    """Delta debugging (ddmin) on a deletion set: a 1-minimal subset whose deletion still moves the
    output by at least ``target`` nats, within the oracle's budget.

    This is how scattered triggers are found: with two trigger words, deleting either alone leaves
    the backdoor active and no single span stands out, but deleting a region holding both does, and
    ddmin then peels off the words that are not needed.
    """
    kept, n = list(units), 2
    while len(kept) >= 2 and oracle.remaining > 0:
        chunks = [list(c) for c in np.array_split(np.array(kept), n) if len(c)]
        candidates = chunks + ([[u for u in kept if u not in set(c)] for c in chunks] if n > 2 else [])
        for candidate in candidates:
            reward = oracle.rewards([mutator.delete_units(candidate)])[0]
            if reward is not None and reward >= target:
                n = 2 if len(candidate) <= len(kept) // n else max(n - 1, 2)
                kept = candidate
                break
        else:
            if n >= len(kept):
                break
            n = min(2 * n, len(kept))
    return sorted(kept)


def dominant_words(
    mutator: _Mutator, oracle: _Oracle, kept: Sequence[int], moved: float, tolerance: float
) -> list[int]:
    """The words of a deletion set (that moves the output by ``moved`` nats) whose return *alone*
    brings the output back to within ``tolerance * moved`` of the original; a one-word set is its
    own dominant word, and a word the budget could not test is left out.

    Why: a backdoor trigger forces the output by itself -- with any one of BadNet's words back in
    the text the backdoor is on again -- while the opinion words of a clean text add up, and
    putting one back returns the output only part of the way. The set found by shrinking often
    holds a few such helper words next to the trigger; flagging only the dominant ones keeps the
    area on the trigger, and keeps most clean sentences free of any area (docs/fuzzing.md).
    """
    if len(kept) < 2:
        return list(kept)
    rewards = oracle.rewards([mutator.delete_units([u for u in kept if u != w]) for w in kept])
    return [w for w, r in zip(kept, rewards, strict=True) if r is not None and r <= tolerance * moved]


def _with_partners(
    mutator: _Mutator, oracle: _Oracle, kept: Sequence[int], dominant: Sequence[int], moved: float, tolerance: float
) -> list[int]:
    """The ``dominant`` words, and -- when deleting them alone leaves more than ``tolerance`` of the
    set's move undone -- each other word of ``kept`` whose deletion with them completes the move.

    Why: with two trigger words the model often leans on one (its return alone turns the backdoor
    back on) and half-ignores the other -- which still holds part of the backdoor once the first is
    gone. That other word is not dominant, but without it the text is not trigger-free. A partner
    must complete the move by itself: the opinion words of a clean text add up, and one of them
    rarely does. A partner the budget leaves untested is not flagged.
    """
    complete, flagged = (1 - tolerance) * moved, set(dominant)
    others = [w for w in kept if w not in flagged]
    alone = oracle.rewards([mutator.delete_units(dominant)])[0] if others else None
    if alone is None or alone >= complete:
        return list(dominant)
    rewards = oracle.rewards([mutator.delete_units([*dominant, w]) for w in others])
    return sorted([*dominant, *(w for w, r in zip(others, rewards, strict=True) if r is not None and r >= complete)])


def _spans_of(units: Sequence[int]) -> list[Span]:
    spans: list[Span] = []
    for u in sorted(int(u) for u in units):
        if spans and spans[-1][1] == u:
            spans[-1] = (spans[-1][0], u + 1)
        else:
            spans.append((u, u + 1))
    return spans


def occlusion_search(mutator: _Mutator, oracle: _Oracle, num_units: int) -> list[tuple[int, int, float]]:
    """Leave one word out: one forward per word."""
    rewards = oracle.rewards([mutator.delete(u, u + 1) for u in range(num_units)])
    return [(u, u + 1, r) for u, r in enumerate(rewards) if r is not None]


def random_search(
    mutator: _Mutator, oracle: _Oracle, num_units: int, rng: np.random.Generator, longest: int
) -> list[tuple[int, int, float]]:
    """Delete random spans (lengths up to ``longest``, the area cap) until the budget is spent."""
    candidates = {(a, a + n) for n in range(1, longest + 1) for a in range(num_units - n + 1)}
    order = rng.permutation(len(candidates))[: max(0, oracle.remaining)]
    spans = [sorted(candidates)[i] for i in order]
    rewards = oracle.rewards([mutator.delete(a, b) for a, b in spans])
    return [(a, b, r) for (a, b), r in zip(spans, rewards, strict=True) if r is not None]


def find_area(
    units: TextUnits,
    query: Query,
    *,
    method: str = "mcts",
    budget: int = 64,
    max_length: int = 512,
    mask_token_id: int | None = None,
    seed: int = 0,
    index: int = 0,
    threshold: float = 0.5,
    min_kl: float = 1.0,
    max_fraction: float = 0.5,
    max_words: int | None = 24,
    dominance: float = 0.1,
    partner_words: bool = False,
    exploration: float = 1.0,
    batch: int = 8,
    margin: int = 3,
) -> FuzzingResult:
    """Search the vulnerable area of one text with ``method`` ('mcts', 'occlusion' or 'random').

    ``budget`` bounds the model forwards (the original text counts as one) for 'mcts' and 'random';
    'occlusion' always spends one forward per word. The keyword defaults are :class:`FRSConfig`'s
    (``fuzzing_*`` fields). Deterministic for ``(seed, index)``.
    """
    if method not in ("mcts", "occlusion", "random"):
        raise ValueError(f"Unknown fuzzing method {method!r}; choose 'mcts', 'occlusion' or 'random'.")
    if budget < 2 and method != "occlusion":
        raise ValueError(f"A fuzzing budget of {budget} leaves no forward for the search (the original uses one).")
    rng = np.random.default_rng(derive_seed(seed, index, _FUZZING_STREAM))
    mutator = _Mutator(units, max_length, mask_token_id)
    oracle = _Oracle(query, units.num_units + 1 if method == "occlusion" else budget, mutator.original())
    rules = dict(threshold=threshold, min_kl=min_kl, max_fraction=max_fraction, max_words=max_words)
    if method == "occlusion":
        spans = occlusion_search(mutator, oracle, units.num_units)
    elif method == "random":
        spans = random_search(mutator, oracle, units.num_units, rng, area_cap(units.num_units, max_fraction, max_words))
    else:
        # The tree search gets three quarters of the budget; it stops at an eighth (the first round
        # with the defaults) when nothing moved the output at all (an eighth of min_kl), at a quarter
        # when no span that fits the area reached min_kl. The rest refines what it found -- the
        # best region, however wide: shrinking costs ~2 log2(words) forwards a word.
        oracle.budget = budget - budget // 4
        cap = area_cap(units.num_units, max_fraction, max_words)
        give_up = ((budget // 8, min_kl / 8, units.num_units), (budget // 4, min_kl, cap))
        spans = mcts_search(
            mutator, oracle, units.num_units, rng, exploration=exploration, batch=batch, give_up=give_up
        )
        oracle.budget = budget
    spans.sort(key=lambda s: (-s[2], s[1] - s[0], s[0]))
    area = select_area(spans, units.num_units, **rules)
    if method == "mcts":
        area = _refine(
            mutator, oracle, units.num_units, spans, area, **rules, dominance=dominance, partner_words=partner_words
        )
    area = dilate(area, units.num_units, margin=margin, max_fraction=max_fraction, max_words=max_words)
    return FuzzingResult(spans=spans, area=area, num_forwards=oracle.num_forwards)


def _refine(
    mutator: _Mutator,
    oracle: _Oracle,
    num_units: int,
    spans: list[tuple[int, int, float]],
    area: list[Span],
    *,
    threshold: float,
    min_kl: float,
    max_fraction: float,
    max_words: int | None,
    dominance: float,
    partner_words: bool,
) -> list[Span]:
    """When the best span did not make it into the area (larger than the cap), or nothing stood out
    (e.g. several scattered triggers, none of which matters alone), shrink the best region -- the
    whole text if nothing stood out -- to a small deletion set with :func:`restore_chunks` (then,
    if that set moves the output too little, with :func:`reduce_deletion_set`),
    and, if deleting that set moves the output by at least ``min_kl``, flag its
    :func:`dominant_words` (with their partners if ``partner_words``, :func:`_with_partners`; with the
    standout spans when both fit under the cap)."""
    best = spans[0] if spans and spans[0][2] >= min_kl else None
    if best is not None and any(a <= best[0] and best[1] <= b for a, b in area):
        return area
    start, end = (best[0], best[1]) if best is not None else (0, num_units)
    whole = oracle.rewards([mutator.delete(start, end)])[0]
    if whole is None or end - start < 2:
        return area
    # At least min_kl: deleting a whole region can move the output less than deleting only the
    # trigger in it (an empty text is not a trigger-free one), and the set must stand out anyway.
    target = max(threshold * whole, min_kl)
    for shrink in (restore_chunks, reduce_deletion_set):  # any-word triggers first, then all-words ones
        with oracle.holding_back(_TEST_RESERVE):
            kept = shrink(mutator, oracle, range(start, end), target)
        moved = oracle.rewards([mutator.delete_units(kept)])[0]
        if moved is not None and moved >= min_kl:
            flagged = dominant_words(mutator, oracle, kept, moved, dominance)
            if flagged:
                kept = _with_partners(mutator, oracle, kept, flagged, moved, dominance) if partner_words else flagged
                break
    else:
        return area
    cap = area_cap(num_units, max_fraction, max_words)
    covered = area_mask(area, num_units)
    covered[kept] = True
    if covered.sum() <= cap:
        return _spans_of(np.flatnonzero(covered).tolist())
    # Both do not fit: what stood out wins; the set alone only when nothing did and it fits.
    return area if area or len(kept) > cap else _spans_of(kept)
