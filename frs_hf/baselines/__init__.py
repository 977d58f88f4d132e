"""Defenses compared in the backdoor benchmark, behind one `Defense` interface, and a registry by name.

``build_defense("strip", model, tokenizer, clean_texts=held_out)`` builds any of `DEFENSES` from a
plain sequence classifier and its tokenizer, so that the CLI and the evaluation harness pick
defenses by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import FRSConfig
from ..modeling import SmoothedModelForSequenceClassification
from .base import (
    Defense,
    DefenseOutput,
    NoDefense,
    class_probabilities,
    forward_sequences,
    pad_token_id,
    token_limit,
)
from .masking import UniformMaskingDefense, masking_radius, num_masked, ranmask_delta, sample_masks
from .onion import ONIONDefense, sequence_nll
from .smoothing import FRSDefense, SmoothingDefense, UniformDeletionDefense
from .strip import STRIPDefense, entropy_threshold, superimpose, tfidf_terms

# Every defense by its ``name``: ``DEFENSES[name].certifies`` tells whether its outputs carry a radius.
DEFENSES: dict[str, type[Defense]] = {
    cls.name: cls
    for cls in (NoDefense, UniformDeletionDefense, UniformMaskingDefense, STRIPDefense, ONIONDefense, FRSDefense)
}


def build_defense(
    name: str,
    model,
    tokenizer,
    *,
    frs_config: FRSConfig | None = None,
    clean_texts: Sequence[str] | None = None,
    lm=None,
    lm_tokenizer=None,
    seed: int = 0,
    **kwargs: Any,
) -> Defense:
    """Build the defense ``name`` (a key of `DEFENSES`) around a plain sequence classifier.

    ``frs_config`` configures FRS and uniform deletion, and gives uniform masking its Monte Carlo
    budget (n0, n, alpha...), so that all three are compared under one budget; ``clean_texts`` fits
    STRIP; ``lm`` and ``lm_tokenizer`` are ONION's language model (default: the packaged SmolLM2);
    ``seed`` drives the randomized defenses. The shared arguments a defense does not use are ignored;
    other keyword arguments go to its constructor (``rate=0.5``, ``num_copies=50``, ``threshold=10.0``...).
    """
    if name not in DEFENSES:
        raise ValueError(f"Unknown defense {name!r}; known defenses: {', '.join(DEFENSES)}.")
    cls = DEFENSES[name]
    if issubclass(cls, SmoothingDefense):
        return cls(SmoothedModelForSequenceClassification.from_model(model, tokenizer, frs_config), seed=seed, **kwargs)
    if cls is UniformMaskingDefense:
        return cls(model, tokenizer, config=frs_config, seed=seed, **kwargs)
    if cls is STRIPDefense:
        if clean_texts is None:
            raise ValueError(
                "The 'strip' defense needs clean_texts: held-out clean texts to calibrate and superimpose."
            )
        return cls(model, tokenizer, seed=seed, **kwargs).fit(clean_texts)
    if cls is ONIONDefense:
        if (lm is None) != (lm_tokenizer is None):
            raise ValueError("Pass both lm and lm_tokenizer for ONION, or neither for the packaged SmolLM2.")
        if lm is None:
            return cls.from_packaged(model, tokenizer, **kwargs)
        return cls(model, tokenizer, lm, lm_tokenizer, **kwargs)
    return cls(model, tokenizer, **kwargs)


__all__ = [
    "DEFENSES",
    "Defense",
    "DefenseOutput",
    "FRSDefense",
    "NoDefense",
    "ONIONDefense",
    "STRIPDefense",
    "SmoothingDefense",
    "UniformDeletionDefense",
    "UniformMaskingDefense",
    "build_defense",
    "class_probabilities",
    "entropy_threshold",
    "forward_sequences",
    "masking_radius",
    "num_masked",
    "pad_token_id",
    "ranmask_delta",
    "sample_masks",
    "sequence_nll",
    "superimpose",
    "tfidf_terms",
    "token_limit",
]
