"""STRIP (Gao et al. 2019; text variant STRIP-ViTA, Gao et al. 2021): reject inputs whose prediction
survives strong perturbation.

A trigger dominates the backdoored model's decision, so copies of a triggered input keep predicting
the target class with confidence even when much of the text is overwritten, while copies of a clean
input become uncertain. Perturbation (the text scheme of STRIP-ViTA as implemented by OpenBackdoor):
each copy draws one held-out clean text and overwrites ``floor(swap_ratio * U)`` of the input's ``U``
words, at positions drawn without replacement, with that clean text's words in decreasing TF-IDF
order (its most distinctive words first; cycled if it has fewer distinct words). The score is the
mean entropy (nats) of the model's class probabilities over ``num_copies`` copies; an input scoring
below a threshold set on clean texts at false-rejection rate ``frr`` is rejected.

STRIP certifies nothing: it is an empirical detector, and an adaptive attacker who knows it can
choose a trigger that does not survive the perturbation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.special import entr

from ..randomize import check_texts
from ..utils import derive_seed
from .base import Defense, DefenseOutput, class_probabilities

_TERM = re.compile(r"\w+")  # words of letters and digits, lower-cased
# Seed keys of the pool/calibration split and of the calibration copies: negative, so never an example index.
_POOL_KEY, _CALIBRATION_KEY = -1, -2


def tfidf_terms(texts: Sequence[str]) -> list[list[str]]:
    """Each text's distinct terms by decreasing TF-IDF (ties: first occurrence first).

    TF is the count in the text, IDF the smoothed ``ln((1 + N) / (1 + df)) + 1`` of scikit-learn, so
    words common to many texts ("the", "and") come last without a stop-word list.
    """
    terms = [_TERM.findall(text.lower()) for text in texts]
    document_frequency = Counter(t for words in terms for t in set(words))
    idf = {t: math.log((1 + len(texts)) / (1 + df)) + 1.0 for t, df in document_frequency.items()}
    ranked = []
    for words in terms:
        counts = Counter(words)  # insertion order = first occurrence
        ranked.append(sorted(counts, key=lambda t: -counts[t] * idf[t]))
    return ranked


def superimpose(words: Sequence[str], replacements: Sequence[str], swap_ratio: float, rng: np.random.Generator) -> str:
    """``words`` with ``floor(swap_ratio * len(words))`` random positions overwritten by
    ``replacements`` in order (cycled when shorter)."""
    count = math.floor(swap_ratio * len(words))
    out = list(words)
    positions = rng.choice(len(words), size=count, replace=False)
    for i, position in enumerate(positions):
        out[position] = replacements[i % len(replacements)]
    return " ".join(out)


def entropy_threshold(clean_entropies: Sequence[float], frr: float) -> float:
    """The threshold below which inputs are rejected: the ``floor(frr * n)``-th smallest clean entropy
    (0-based), so that at most a fraction ``frr`` of these clean texts falls strictly below it."""
    entropies = np.sort(np.asarray(clean_entropies, dtype=np.float64))
    if len(entropies) == 0:
        raise ValueError("entropy_threshold needs at least one clean entropy.")
    if not 0.0 <= frr < 1.0:
        raise ValueError(f"frr must be a false-rejection rate in [0, 1), got {frr!r}.")
    return float(entropies[math.floor(frr * len(entropies))])


class STRIPDefense(Defense):
    """STRIP: the plain model's label, or a rejection when the input's perturbed copies stay confident.

    `fit` must be called first with held-out clean texts: a random ``calibration_fraction`` of them
    sets the threshold at false-rejection rate ``frr`` (perturbed exactly like test inputs), the
    rest form the pool the superimposed words are drawn from, so a calibration text is never
    perturbed with its own words. ``seed`` drives the split and every perturbation (example ``i``
    draws from ``(seed, i)``).
    """

    name = "strip"

    def __init__(
        self,
        model,
        tokenizer,
        *,
        num_copies: int = 20,
        swap_ratio: float = 0.5,
        frr: float = 0.05,
        calibration_fraction: float = 0.5,
        seed: int = 0,
        max_length: int | None = None,
        batch_size: int = 64,
    ) -> None:
        if not isinstance(num_copies, int) or num_copies < 1:
            raise ValueError(f"num_copies must be a positive integer, got {num_copies!r}.")
        if not 0.0 < swap_ratio <= 1.0:
            raise ValueError(f"swap_ratio must be in (0, 1], got {swap_ratio!r}.")
        if not 0.0 <= frr < 1.0:
            raise ValueError(f"frr must be a false-rejection rate in [0, 1), got {frr!r}.")
        if not 0.0 < calibration_fraction < 1.0:
            raise ValueError(f"calibration_fraction must be in (0, 1), got {calibration_fraction!r}.")
        self.model, self.tokenizer = model, tokenizer
        self.num_copies, self.swap_ratio, self.frr = num_copies, swap_ratio, frr
        self.calibration_fraction, self.seed = calibration_fraction, seed
        self.max_length, self.batch_size = max_length, batch_size
        self.pool: list[list[str]] | None = None  # superimposition words of each pool text, by TF-IDF
        self.threshold: float | None = None
        self.calibration_entropies: np.ndarray | None = None

    def fit(self, clean_texts: Sequence[str]) -> STRIPDefense:
        """Split ``clean_texts`` into the superimposition pool and the calibration texts; set the threshold."""
        clean_texts = check_texts(clean_texts)
        order = np.random.default_rng(derive_seed(self.seed, _POOL_KEY, 0)).permutation(len(clean_texts))
        num_calibration = round(self.calibration_fraction * len(clean_texts))
        if not 0 < num_calibration < len(clean_texts):
            raise ValueError(
                f"STRIP needs clean texts both to calibrate and to superimpose; {len(clean_texts)} text(s) at "
                f"calibration_fraction={self.calibration_fraction} leave one side empty."
            )
        pool = [clean_texts[i] for i in order[num_calibration:]]
        self.pool = [terms for terms in tfidf_terms(pool) if terms]
        if not self.pool:
            raise ValueError("No pool text has a word of letters or digits to superimpose.")
        calibration = [clean_texts[i] for i in order[:num_calibration]]
        keys = [(_CALIBRATION_KEY, int(i)) for i in order[:num_calibration]]
        self.calibration_entropies = self._scores(calibration, keys)[1]
        self.threshold = entropy_threshold(self.calibration_entropies, self.frr)
        return self

    def entropies(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> np.ndarray:
        """Mean prediction entropy over each text's ``num_copies`` superimposed copies (low: suspicious)."""
        texts = check_texts(texts)
        return self._scores(texts, self._keys(texts, indices))[1]

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        texts = check_texts(texts)
        labels, entropy = self._scores(texts, self._keys(texts, indices), with_labels=True)
        return [
            DefenseOutput(label=None, rejected=True) if h < self.threshold else DefenseOutput(label=int(k))
            for k, h in zip(labels, entropy, strict=True)
        ]

    @staticmethod
    def _keys(texts: list[str], indices: Sequence[int] | None) -> list[tuple[int, ...]]:
        if indices is not None and len(indices) != len(texts):
            raise ValueError(f"Got {len(indices)} indices for {len(texts)} texts.")
        return [(int(i),) for i in (range(len(texts)) if indices is None else indices)]

    def _scores(
        self, texts: list[str], keys: list[tuple[int, ...]], *, with_labels: bool = False
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """(plain labels or None, mean entropies); every copy of every text goes through one batched call."""
        if self.pool is None:
            raise RuntimeError("STRIPDefense.fit(clean_texts) must be called before predict or entropies.")
        copies = []
        for text, key in zip(texts, keys, strict=True):
            rng = np.random.default_rng(derive_seed(self.seed, *key))
            words = text.split()
            for piece in rng.integers(len(self.pool), size=self.num_copies):
                copies.append(superimpose(words, self.pool[piece], self.swap_ratio, rng))
        probs = class_probabilities(
            self.model,
            self.tokenizer,
            copies + (texts if with_labels else []),
            max_length=self.max_length,
            batch_size=self.batch_size,
        )
        entropy = entr(probs[: len(copies)]).sum(-1).reshape(len(texts), self.num_copies).mean(-1)
        labels = probs[len(copies) :].argmax(-1) if with_labels else None
        return labels, entropy
