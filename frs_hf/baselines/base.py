"""What every defense shares, so that the evaluation harness treats FRS and the baselines alike.

A defense maps texts to `DefenseOutput`s: a label, or ``None`` when it abstains (smoothing without a
clear majority) or rejects the input (a detector such as STRIP); certifying defenses also give a
radius. ``indices`` seed each example's randomness, so results do not depend on batching.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..randomize import check_texts, collate, pad_token_id


@dataclass(frozen=True)
class DefenseOutput:
    """One defended prediction."""

    label: int | None  # None: abstained or rejected
    rejected: bool = False  # a detector flagged the input as triggered and refused it
    radius: int | None = None  # certified word edits (deletion smoothing: anywhere; masking: substitutions)
    area_radius: int | None = None  # FRS only: certified removals inside the fuzzed area

    @property
    def abstained(self) -> bool:
        return self.label is None


class Defense(ABC):
    """A text classifier with a defense around it. Subclasses set ``name`` and implement `predict`."""

    name: ClassVar[str] = ""
    certifies: ClassVar[bool] = False  # whether outputs carry a certified radius

    def fit(self, clean_texts: Sequence[str]) -> Defense:
        """Calibrate on held-out clean texts (detection thresholds); a no-op for most defenses."""
        return self

    @abstractmethod
    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        """Defended predictions; ``indices`` (default ``0..len-1``) seed each example's randomness."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def token_limit(model, tokenizer, max_length: int | None = None) -> int:
    """Tokens one model input may hold: ``max_length``, else the smaller of the tokenizer's and the
    model's limits, at most 512."""
    limit = min(
        getattr(tokenizer, "model_max_length", None) or 512,
        getattr(model.config, "max_position_embeddings", None) or 512,
        512,
    )
    if max_length is None:
        return limit
    if not isinstance(max_length, int) or max_length < 3:
        raise ValueError(f"max_length must be an integer >= 3 or None, got {max_length!r}.")
    return max_length


@torch.inference_mode()
def forward_sequences(
    model,
    sequences: Sequence[np.ndarray],
    pad_id: int,
    reduce: Callable[[Any, dict[str, torch.Tensor]], torch.Tensor],
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """``reduce(model_output, inputs)`` for every token sequence, in the order given.

    Sequences are sorted by length and right-padded per batch (`collate`), so padding costs little;
    ``reduce`` maps one batch to a ``[batch, ...]`` tensor (class probabilities, per-sequence NLL...).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    order = np.argsort([len(s) for s in sequences], kind="stable")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    try:
        for start in range(0, len(order), batch_size):
            inputs = collate([sequences[i] for i in order[start : start + batch_size]], pad_id)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            parts.append(reduce(model(**inputs), inputs).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not parts:
        return np.empty((0,), np.float32)
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result


def class_probabilities(
    model, tokenizer, texts: Sequence[str], *, max_length: int | None = None, batch_size: int = 64
) -> np.ndarray:
    """Softmax outputs of a plain sequence classifier, ``[len(texts), num_labels]``.

    Tokenizes once, sorts by length and pads per batch (the model's own batched throughput);
    texts longer than ``max_length`` (default: `token_limit`) are truncated.
    """
    texts = check_texts(texts)
    if not texts:
        return np.empty((0, model.config.num_labels), np.float32)
    encoded = tokenizer(texts, truncation=True, max_length=token_limit(model, tokenizer, max_length))["input_ids"]
    return forward_sequences(
        model,
        [np.asarray(ids, np.int64) for ids in encoded],
        pad_token_id(tokenizer),
        lambda output, _: output.logits.float().softmax(-1),
        batch_size=batch_size,
    )


class NoDefense(Defense):
    """The undefended classifier: argmax of its logits."""

    name = "none"

    def __init__(self, model, tokenizer, *, max_length: int | None = None, batch_size: int = 64) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        probs = class_probabilities(
            self.model, self.tokenizer, texts, max_length=self.max_length, batch_size=self.batch_size
        )
        return [DefenseOutput(label=int(k)) for k in probs.argmax(-1)]
