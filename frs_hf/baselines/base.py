"""What every defense shares, so that the evaluation harness treats FRS and the baselines alike.

A defense maps texts to `DefenseOutput`s: a label, or ``None`` when it abstains (smoothing without a
clear majority) or rejects the input (a detector such as STRIP); certifying defenses also give a
radius. ``indices`` seed each example's randomness, so results do not depend on batching.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..forward import forward_sequences, token_limit
from ..randomize import check_texts, pad_token_id


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
