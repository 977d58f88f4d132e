"""From span scores to the vulnerable area, and :func:`find_area`, the whole pipeline for one text:
search -> select the standout spans -> refine by shrinking -> dilate by a margin -> the transplant test (with
references).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import FuzzingConfig
from ..randomize import Span, TextUnits
from ..utils import Stream, derive_seed
from .queries import Mutator, Oracle, Query
from .search import mcts_search, occlusion_search, random_search
from .shrink import dominant_words, reduce_deletion_set, restore_chunks, with_partners
from .transplant import References, transplant_test

# Forwards that shrinking a deletion set leaves for testing the words it keeps (a trigger is 1-3 words).
_TEST_RESERVE = 4


@dataclass(frozen=True)
class FuzzingResult:
    """Ranked spans ``(start, end, score)`` (word units, end exclusive; score in nats), the
    vulnerable area derived from them, and the model forwards spent (the original text included)."""

    spans: list[tuple[int, int, float]]
    area: list[Span]
    num_forwards: int
    num_queries: int = 0  # mutations answered, repeats (from the cache, no forward) included
    transplant: float | None = None  # the transplant test's share (None: not run), the area empty below the bar


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
    return spans_of(np.flatnonzero(covered).tolist())


def spans_of(units: Sequence[int]) -> list[Span]:
    spans: list[Span] = []
    for u in sorted(int(u) for u in units):
        if spans and spans[-1][1] == u:
            spans[-1] = (spans[-1][0], u + 1)
        else:
            spans.append((u, u + 1))
    return spans


def find_area(
    units: TextUnits,
    query: Query,
    config: FuzzingConfig | None = None,
    *,
    max_length: int = 512,
    mask_token_id: int | None = None,
    seed: int = 0,
    index: int = 0,
    references: References | None = None,
    **settings: Any,
) -> FuzzingResult:
    """Search the vulnerable area of one text as ``config`` says (default: ``FuzzingConfig()``).

    ``config.budget`` bounds the model forwards of the search (the original text counts as one) for 'mcts' and
    'random'; 'occlusion' always spends one forward per word. With ``references``, an area found must pass the
    transplant test (:func:`~frs_hf.fuzzing.transplant.transplant_test`), one or two more forwards per reference
    of another class, and partner words default to on. Deterministic for ``(seed, index)``. Keyword settings
    (``budget=32``, ``max_fraction=0.3``: the signature before ``FuzzingConfig``) still work, with a warning.
    """
    config = config or FuzzingConfig()
    if settings:
        names = {"max_fraction": "max_area", "max_words": "max_area_words"}
        warnings.warn(
            f"find_area({', '.join(f'{k}=' for k in settings)}) is deprecated: pass a FuzzingConfig.",
            FutureWarning,
            stacklevel=2,
        )
        config = config.replace(**{names.get(k, k): v for k, v in settings.items()})
    if config.partner_words is None:  # partner words cost clean accuracy only where the test is off
        config = config.replace(partner_words=references is not None)
    method, budget = config.method, config.budget
    if budget < 2 and method != "occlusion":
        raise ValueError(f"A fuzzing budget of {budget} leaves no forward for the search (the original uses one).")
    rng = np.random.default_rng(derive_seed(seed, index, Stream.FUZZING))
    mutator = Mutator(units, max_length, mask_token_id)
    oracle = Oracle(query, units.num_units + 1 if method == "occlusion" else budget, mutator.original())
    cap = area_cap(units.num_units, config.max_area, config.max_area_words)
    if method == "occlusion":
        spans = occlusion_search(mutator, oracle, units.num_units)
    elif method == "random":
        spans = random_search(mutator, oracle, units.num_units, rng, cap)
    else:
        # The tree search gets three quarters of the budget; it stops at an eighth (the first round
        # with the defaults) when nothing moved the output at all (an eighth of min_kl), at a quarter
        # when no span that fits the area reached min_kl. The rest refines what it found -- the
        # best region, however wide: shrinking costs ~2 log2(words) forwards a word.
        oracle.budget = budget - budget // 4
        give_up = ((budget // 8, config.min_kl / 8, units.num_units), (budget // 4, config.min_kl, cap))
        spans = mcts_search(
            mutator, oracle, units.num_units, rng, exploration=config.exploration, batch=config.batch, give_up=give_up
        )
        oracle.budget = budget
    spans.sort(key=lambda s: (-s[2], s[1] - s[0], s[0]))
    area = select_area(spans, units.num_units, **_rules(config))
    if method == "mcts":
        area = refine(mutator, oracle, units.num_units, spans, area, config)
    core = area
    area = dilate(
        area, units.num_units, margin=config.margin, max_fraction=config.max_area, max_words=config.max_area_words
    )
    share, forwards = None, 0
    if area and references is not None:
        area, share, forwards = transplant_test(
            mutator,
            core,
            area,
            int(oracle.base.argmax()),
            references,
            query,
            rng,
            config.transplant_share,
            config.transplant_confidence,
        )
    return FuzzingResult(
        spans=spans,
        area=area,
        num_forwards=oracle.num_forwards + forwards,
        num_queries=oracle.num_queries + forwards,
        transplant=share,
    )


def _rules(config: FuzzingConfig) -> dict:
    """:func:`select_area`'s keyword arguments from a config."""
    return dict(
        threshold=config.threshold, min_kl=config.min_kl, max_fraction=config.max_area, max_words=config.max_area_words
    )


def refine(
    mutator: Mutator,
    oracle: Oracle,
    num_units: int,
    spans: list[tuple[int, int, float]],
    area: list[Span],
    config: FuzzingConfig,
) -> list[Span]:
    """Look inside the best region when the area missed it.

    That happens when the best span was wider than the cap, or when nothing stood out (several scattered
    trigger words, none of which matters alone: the region is then the whole text). The region's deletion
    set is shrunk (:func:`restore_chunks`, then :func:`reduce_deletion_set`) and, if what is left still moves
    the output by ``min_kl``, its :func:`dominant_words` (and :func:`with_partners` with ``partner_words``)
    join the area, or replace it when both do not fit under the cap.
    """
    min_kl = config.min_kl
    best = spans[0] if spans and spans[0][2] >= min_kl else None
    if best is not None and any(a <= best[0] and best[1] <= b for a, b in area):
        return area
    start, end = (best[0], best[1]) if best is not None else (0, num_units)
    whole = oracle.rewards([mutator.delete(start, end)])[0]
    if whole is None or end - start < 2:
        return area
    # At least min_kl: deleting a whole region can move the output less than deleting only the
    # trigger in it (an empty text is not a trigger-free one), and the set must stand out anyway.
    target = max(config.threshold * whole, min_kl)
    for shrink in (restore_chunks, reduce_deletion_set):  # any-word triggers first, then all-words ones
        with oracle.holding_back(_TEST_RESERVE):
            kept = shrink(mutator, oracle, range(start, end), target)
        moved = oracle.rewards([mutator.delete_units(kept)])[0]
        if moved is not None and moved >= min_kl:
            flagged = dominant_words(mutator, oracle, kept, moved, config.dominance)
            if flagged:
                if config.partner_words:
                    flagged = with_partners(mutator, oracle, kept, flagged, moved, config.dominance)
                kept = flagged
                break
    else:
        return area
    cap = area_cap(num_units, config.max_area, config.max_area_words)
    covered = area_mask(area, num_units)
    covered[kept] = True
    if covered.sum() <= cap:
        return spans_of(np.flatnonzero(covered).tolist())
    # Both do not fit: what stood out wins; the set alone only when nothing did and it fits.
    return area if area or len(kept) > cap else spans_of(kept)
