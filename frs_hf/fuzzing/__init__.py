"""Fuzzing: find the spans of a text whose mutation moves the model's output most.

A backdoor trigger is, by construction, a small part of the input that decides the output. The
search mutates spans of word units (deletion, substitution by the mask token, adjacent
transposition: the Damerau-Levenshtein operations) and scores each span by the KL divergence
``KL(p_mutated || p_original)`` of the model's class distribution. Monte Carlo tree search runs
coarse to fine: the root is the whole text, children are halves (plus a straddling middle half),
down to single words, and UCT spends the forward budget where the divergence is.

The pipeline, one module a step: :mod:`.queries` (mutated sequences, budgeted model queries) ->
:mod:`.search` (span scores) -> :mod:`.shrink` (a deletion set down to the words that decide) ->
:mod:`.transplant` (does the area act like a trigger on other texts?) -> :mod:`.area` (spans to the
vulnerable area; :func:`find_area` runs it all) -> :mod:`.calibrate` (the floor fitted to a model).

The area found here only *sets the deletion rates*; the certificate never trusts it (see
docs/theory.md: ``area_radius`` speaks about units inside the area, ``radius`` about edits anywhere).
The search draws from its own random stream, never from the smoothing draws.
"""

from .area import FuzzingResult, area_cap, area_mask, dilate, find_area, select_area
from .calibrate import calibrate_min_kl
from .queries import Query, kl_divergence, memoize, original_sequence
from .search import mcts_search, occlusion_search, random_search
from .shrink import dominant_words, reduce_deletion_set, restore_chunks
from .transplant import References, transplant_share, transplant_test

__all__ = [
    "FuzzingResult",
    "Query",
    "References",
    "area_cap",
    "area_mask",
    "calibrate_min_kl",
    "dilate",
    "dominant_words",
    "find_area",
    "kl_divergence",
    "mcts_search",
    "memoize",
    "occlusion_search",
    "original_sequence",
    "random_search",
    "reduce_deletion_set",
    "restore_chunks",
    "select_area",
    "transplant_share",
    "transplant_test",
]
