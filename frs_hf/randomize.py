"""Fuzzed text randomization: word units, position-dependent deletion, batching of copies.

A text is tokenized once. Its *units* are whitespace-delimited words; every content token belongs
to exactly one unit (a token that starts in whitespace, like GPT-2's ``Ġword``, belongs to the
word that follows). A randomized copy keeps, deletes or masks whole units, so it is built by
selecting token ids, never by re-tokenizing text.

Copies are truncated to the model's token budget *after* deletion, so truncation is part of the
base classifier and the certificate covers the whole text, however long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .utils import Stream, derive_seed

Span = tuple[int, int]
# A word unit: a run of characters that are neither whitespace nor invisible format characters (zero-width
# spaces and joiners, which str.split() keeps as words but which carry no content to classify).
WORD_PATTERN = re.compile(r"[^\s\u200b-\u200d\u2060\ufeff]+")


@dataclass(frozen=True)
class TextUnits:
    """A tokenized text with its word units."""

    text: str
    token_ids: np.ndarray  # int64 [T]: content tokens, special tokens excluded
    token_unit: np.ndarray  # int64 [T]: unit index of each content token
    unit_spans: np.ndarray  # int64 [U, 2]: character span of each unit
    prefix_ids: tuple[int, ...]  # special tokens before the content, e.g. [CLS]
    suffix_ids: tuple[int, ...]  # special tokens after the content, e.g. [SEP]

    @property
    def num_units(self) -> int:
        return len(self.unit_spans)

    @property
    def num_special(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    def char_span(self, start: int, end: int) -> tuple[int, int, str]:
        """Character span and text of the units ``start:end``."""
        a, b = int(self.unit_spans[start, 0]), int(self.unit_spans[end - 1, 1])
        return a, b, self.text[a:b]


def check_texts(texts: str | Iterable[str], *, name: str = "Text") -> list[str]:
    """Normalize one text or a list of texts, rejecting what cannot be smoothed (``name`` the position,
    e.g. ``"Dataset row"``)."""
    if isinstance(texts, str):
        texts = [texts]
    elif isinstance(texts, (bytes, dict)) or not isinstance(texts, Iterable):
        raise TypeError(f"Expected a string or a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name} {i} is a {type(text).__name__}, not a string.")
        if not WORD_PATTERN.search(text):
            raise ValueError(f"{name} {i} is empty or whitespace only: there is nothing to classify.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"{name} {i} is not valid Unicode ({err.reason} at character {err.start}).") from None
    return texts


def segment(tokenizer, texts: Sequence[str]) -> list[TextUnits]:
    """Tokenize ``texts`` once (in one batched call) and map tokens to word units."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is a slow tokenizer; FRS needs a fast (Rust) tokenizer for "
            "character offsets. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    texts = check_texts(texts)
    enc = tokenizer(
        texts,
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=False,
        verbose=False,
    )
    out = []
    for text, ids, offsets, special in zip(
        texts, enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"], strict=True
    ):
        ids, offsets, special = np.asarray(ids, np.int64), np.asarray(offsets, np.int64), np.asarray(special)
        start = int(np.argmin(special)) if not special.all() else len(ids)
        end = len(ids) - int(np.argmin(special[::-1])) if not special.all() else len(ids)
        spans = np.array([m.span() for m in WORD_PATTERN.finditer(text)], np.int64).reshape(-1, 2)
        token_unit = np.searchsorted(spans[:, 1], offsets[start:end, 0], side="right")
        out.append(
            TextUnits(
                text=text,
                token_ids=ids[start:end],
                token_unit=np.minimum(token_unit, len(spans) - 1),
                unit_spans=spans,
                prefix_ids=tuple(ids[:start].tolist()),
                suffix_ids=tuple(ids[end:].tolist()),
            )
        )
    return out


def unit_rates(num_units: int, area: Sequence[Span] | None, omega_low: float, omega_high: float) -> np.ndarray:
    """Deletion probability of each unit: ``omega_high`` inside the area's spans, ``omega_low`` elsewhere.

    The area must be fixed before sampling (it is computed from the input, never from the draws).
    """
    rates = np.full(num_units, omega_low, dtype=np.float64)
    for start, end in area or ():
        if not (0 <= start < end <= num_units):
            raise ValueError(f"Area span ({start}, {end}) is outside the text's {num_units} word units.")
        rates[start:end] = omega_high
    return rates


@dataclass(frozen=True)
class RandomizedCopies:
    """The distinct copies of one example and how the sampled copies map onto them."""

    sequences: list[np.ndarray]  # distinct token sequences, special tokens included
    draws: np.ndarray  # weight-noise draw of each distinct sequence
    inverse: np.ndarray  # [num_copies]: index into ``sequences`` of each sampled copy


# Elements of the per-chunk work arrays (copies x tokens): bounds the memory of randomizing a long text,
# whatever the number of copies (at most a few tens of MB), without changing which copies are drawn.
_CHUNK_ELEMENTS = 1 << 22


def _rows_per_chunk(num_columns: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(num_columns, 1))


class CopyStream:
    """The deletion copies of one example, drawn in order from its own ``(seed, index)`` stream.

    Taking 100 copies and then 900 gives exactly the copies that taking 1,000 at once gives: sequential
    looks and bounded-memory chunks then change nothing about which copies are drawn. Each unit is deleted
    independently with its rate (or, with ``mask_token_id``, masked: see `build_copies`); each copy picks a
    weight-noise draw uniformly at random, from a stream of its own.
    """

    def __init__(
        self,
        units: TextUnits,
        rates: np.ndarray,
        *,
        seed: int,
        index: int,
        max_length: int,
        num_draws: int = 1,
        mask_token_id: int | None = None,
    ) -> None:
        self.units, self.rates, self.max_length = units, np.asarray(rates), max_length
        self.num_draws, self.mask_token_id = num_draws, mask_token_id
        self.seed, self.index = seed, index
        self._keep_rng = np.random.default_rng(derive_seed(seed, index))
        self._draw_rng = np.random.default_rng(derive_seed(seed, index, Stream.WEIGHT_DRAW))
        self.taken = 0

    def take(self, num_copies: int, *, deduplicate: bool = True) -> RandomizedCopies:
        """The next ``num_copies`` copies (identical (draw, tokens) pairs kept once when ``deduplicate``).

        Drawn in chunks, so memory grows with ``num_copies x max_length``, not ``num_copies x`` text length.
        """
        units = self.units
        step = _rows_per_chunk(max(units.num_units, len(units.token_ids)))
        rows = [
            _kept_tokens(
                units,
                self._keep_rng.random((min(step, num_copies - c), units.num_units)) >= self.rates,
                self.max_length,
                self.mask_token_id,
            )
            for c in range(0, num_copies, step)
        ]
        if self.num_draws > 1:
            draws = self._draw_rng.integers(self.num_draws, size=num_copies)
        else:
            draws = np.zeros(num_copies, np.int64)
        self.taken += num_copies
        return _assemble(units, rows, draws, deduplicate)


def randomize(
    units: TextUnits,
    rates: np.ndarray,
    num_copies: int,
    *,
    seed: int,
    index: int,
    max_length: int,
    num_draws: int = 1,
    deduplicate: bool = True,
    mask_token_id: int | None = None,
) -> RandomizedCopies:
    """Sample ``num_copies`` deletion copies of one example, seeded by ``(seed, index)``: the first
    ``num_copies`` of its :class:`CopyStream`."""
    stream = CopyStream(
        units, rates, seed=seed, index=index, max_length=max_length, num_draws=num_draws, mask_token_id=mask_token_id
    )
    return stream.take(num_copies, deduplicate=deduplicate)


def build_copies(
    units: TextUnits,
    keep: np.ndarray,
    draws: np.ndarray | None = None,
    *,
    max_length: int,
    deduplicate: bool = True,
    mask_token_id: int | None = None,
) -> RandomizedCopies:
    """The copies of one example that keep the units ``keep[c]`` (bool ``[num_copies, num_units]``).

    A unit that is not kept is dropped, or, with ``mask_token_id``, replaced by ONE mask token
    whatever its number of tokens: a masked word then reveals nothing about itself, not even its
    length, which is what masking certificates for word substitutions need. Copies are truncated to
    ``max_length`` tokens (special tokens included) after deletion or masking. ``draws`` (default:
    all 0) is the weight-noise draw of each copy.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.ndim != 2 or keep.shape[1] != units.num_units:
        raise ValueError(f"keep must have shape [num_copies, {units.num_units}], got {keep.shape}.")
    draws = np.zeros(len(keep), np.int64) if draws is None else np.asarray(draws, np.int64)
    step = _rows_per_chunk(max(units.num_units, len(units.token_ids)))
    rows = [_kept_tokens(units, keep[c : c + step], max_length, mask_token_id) for c in range(0, len(keep), step)]
    return _assemble(units, rows, draws, deduplicate)


def _kept_tokens(units: TextUnits, keep: np.ndarray, max_length: int, mask_token_id: int | None) -> np.ndarray:
    """Token ids of each copy (one row per row of ``keep``), truncated to the budget, padded with -1."""
    if mask_token_id is None:
        token_ids, token_keep = units.token_ids, keep[:, units.token_unit]
    else:
        # Every unit gets a mask slot in front of its own tokens; the slot is kept exactly when the unit is not.
        slot_unit = np.concatenate([np.arange(units.num_units), units.token_unit])
        order = np.argsort(slot_unit, kind="stable")
        is_mask = (np.arange(len(slot_unit)) < units.num_units)[order]
        token_ids = np.concatenate([np.full(units.num_units, mask_token_id, np.int64), units.token_ids])[order]
        token_keep = keep[:, slot_unit[order]] != is_mask

    lengths = np.minimum(token_keep.sum(axis=1), max(0, max_length - units.num_special))
    width = int(lengths.max(initial=0))
    # A stable argsort of "dropped?" brings each copy's kept tokens to the front, in order.
    order = np.argsort(~token_keep, axis=1, kind="stable")[:, :width]
    rows = token_ids[order]
    rows[np.arange(width)[None, :] >= lengths[:, None]] = -1
    return rows


def _assemble(units: TextUnits, rows: list[np.ndarray], draws: np.ndarray, deduplicate: bool) -> RandomizedCopies:
    """Distinct (draw, tokens) copies from the chunks' token rows, with the special tokens around them."""
    width = max((r.shape[1] for r in rows), default=0)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=-1) for r in rows]
    keys = np.concatenate([draws[:, None], *([np.concatenate(rows)] if rows else [])], axis=1)
    if deduplicate:
        keys, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        inverse = np.arange(len(keys))
    prefix, suffix = np.asarray(units.prefix_ids, np.int64), np.asarray(units.suffix_ids, np.int64)
    sequences = [np.concatenate([prefix, row[row >= 0], suffix]) for row in keys[:, 1:]]
    return RandomizedCopies(sequences=sequences, draws=keys[:, 0], inverse=inverse)


def pad_token_id(tokenizer) -> int:
    """The id that pads batches: the tokenizer's pad token, else its EOS token (decoders)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError(f"{type(tokenizer).__name__} has neither a pad nor an EOS token to pad batches with.")
    return pad


def collate(sequences: Sequence[np.ndarray], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token sequences to the longest one in the batch."""
    lengths = np.array([len(s) for s in sequences])
    mask = np.arange(lengths.max())[None, :] < lengths[:, None]
    input_ids = np.full(mask.shape, pad_token_id, dtype=np.int64)
    input_ids[mask] = np.concatenate(sequences)  # boolean assignment fills row by row, in order
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
    }
