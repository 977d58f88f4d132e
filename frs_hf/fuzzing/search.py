"""Span search: which spans' mutation moves the output most. MCTS (coarse to fine, UCT over halves), occlusion
(one word at a time) and random spans, each returning ``(start, end, score)`` within the oracle's budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..randomize import Span
from .queries import Mutator, Oracle


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
    mutator: Mutator,
    oracle: Oracle,
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
    set (:func:`refine`).
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


def occlusion_search(mutator: Mutator, oracle: Oracle, num_units: int) -> list[tuple[int, int, float]]:
    """Leave one word out: one forward per word."""
    rewards = oracle.rewards([mutator.delete(u, u + 1) for u in range(num_units)])
    return [(u, u + 1, r) for u, r in enumerate(rewards) if r is not None]


def random_search(
    mutator: Mutator, oracle: Oracle, num_units: int, rng: np.random.Generator, longest: int
) -> list[tuple[int, int, float]]:
    """Delete random spans (lengths up to ``longest``, the area cap) until the budget is spent."""
    candidates = {(a, a + n) for n in range(1, longest + 1) for a in range(num_units - n + 1)}
    order = rng.permutation(len(candidates))[: max(0, oracle.remaining)]
    spans = [sorted(candidates)[i] for i in order]
    rewards = oracle.rewards([mutator.delete(a, b) for a, b in spans])
    return [(a, b, r) for (a, b), r in zip(spans, rewards, strict=True) if r is not None]
