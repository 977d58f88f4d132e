"""The transplant test: does a flagged area act like a trigger on other texts?

A backdoor trigger is built to force the target label onto *any* input, so inserted into clean texts
that the model puts in another class, it moves nearly all of them to the class it forced here. The
opinion words of a clean text, which the search flags just as readily (deleting "superb" moves a
sentiment model too), rarely outweigh a whole other text: on the benchmark's Rotten Tomatoes MiniLMs
the test leaves 97-98% of clean sentences without an area (about half without it) and keeps the
trigger's area in all but 2 of 400 triggered ones (docs/benchmarks.md, "Fuzzing"). Keeping only the
areas that pass spares clean texts the high deletion rate, which is where FRS's clean accuracy goes.

The test reads only the model's answers on the references, so it changes which rates a text gets,
never what a certificate means (docs/theory.md). A trigger that acts only on some inputs (conditioned
on their content) can fail it; the area is then dropped, as if the search had missed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..randomize import Span, TextUnits
from .queries import Mutator, Query


@dataclass(frozen=True)
class References:
    """Clean texts as token pieces, with the class the model gives each: what the test inserts an area into.

    Built once per call (:meth:`build`), from the texts and the model it is used with.
    """

    mutators: list[Mutator]
    classes: np.ndarray

    @classmethod
    def build(cls, units: Sequence[TextUnits], query: Query, max_length: int) -> References:
        mutators = [Mutator(u, max_length, None) for u in units]
        classes = query([m.original() for m in mutators]).argmax(-1) if mutators else np.zeros(0, np.int64)
        return cls(mutators, np.asarray(classes, np.int64))


def transplant_share(
    mutator: Mutator,
    area: Sequence[Span],
    label: int,
    references: References,
    query: Query,
    rng: np.random.Generator,
    confidence: float,
) -> tuple[float | None, int]:
    """The share of the references of other classes than ``label`` that inserting the area's words (in
    order, as one run, at a random place inside the window) moves to ``label`` -- their answer, with a
    probability of at least ``confidence`` --, and the forwards spent: one per such reference.
    ``(None, 0)`` when no reference is of another class (nothing to test on)."""
    hosts = [m for m, c in zip(references.mutators, references.classes, strict=True) if c != label]
    if not hosts:
        return None, 0
    block = [mutator.pieces[u] for start, end in area for u in range(start, end)]
    probs = query([host.insert(block, rng) for host in hosts])
    moved = (probs.argmax(-1) == label) & (probs[:, label] >= confidence)
    return float(moved.mean()), len(hosts)


def transplant_test(
    mutator: Mutator,
    core: list[Span],
    area: list[Span],
    label: int,
    references: References,
    query: Query,
    rng: np.random.Generator,
    bar: float,
    confidence: float,
) -> tuple[list[Span], float | None, int]:
    """The area that passes the transplant test, its share and the forwards spent: the area with its margin
    (empty when it fails), or the core the search flagged when that passes by itself.

    The margin is tested first because a model may key a phrase trigger on one word that does not act alone
    (docs/fuzzing.md). When the core does act alone, the margin is only context: deleting it at the high rate
    as well leaves copies too short to vote on anything but the label prior, which a poisoned training set
    tilts to the target (docs/benchmarks.md, "Backdoor evaluation tables").
    """
    share, forwards = transplant_share(mutator, area, label, references, query, rng, confidence)
    if share is None:  # no reference of another class: nothing to test on, for the core either
        return area, share, forwards
    if share < bar:
        return [], share, forwards
    if core != area:
        core_share, more = transplant_share(mutator, core, label, references, query, rng, confidence)
        forwards += more
        if core_share >= bar:
            return core, core_share, forwards
    return area, share, forwards
