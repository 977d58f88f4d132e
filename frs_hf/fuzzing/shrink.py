"""Shrinking a deletion set that moves the output to the few words that do it alone: a trigger forces the
output by itself, while the opinion words of a clean text add up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .queries import Mutator, Oracle


def restore_chunks(mutator: Mutator, oracle: Oracle, units: Sequence[int], target: float) -> list[int]:
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


def reduce_deletion_set(mutator: Mutator, oracle: Oracle, units: Sequence[int], target: float) -> list[int]:
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


def dominant_words(mutator: Mutator, oracle: Oracle, kept: Sequence[int], moved: float, tolerance: float) -> list[int]:
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


def with_partners(
    mutator: Mutator, oracle: Oracle, kept: Sequence[int], dominant: Sequence[int], moved: float, tolerance: float
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
